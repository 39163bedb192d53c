"""Formulas in the write path: each process keeps the formula engine's ``Book`` of the workbooks it
writes to, and every change that commits to a workbook with formulas goes through it (``follow``),
which adds what the change did to computed values (``computed``, ``formulas``) and gives the formula
cells whose stored form (see ``formulas.stored``) must be written with the change.

A Book is only used under the workbook's lock, by the transaction that holds it: ``take`` hands it
over (loaded from the database, or caught up from the change log when another process committed
since), and ``keep`` puts it back once the transaction has committed at ``rev``. A transaction that
fails never puts it back, so a Book never holds what was not committed.

Loading keeps the values stored with the formulas: a process that starts (or a workbook that was not
in memory) recomputes nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection

from workbooks import selectors
from workbooks.domain.formulas import stored
from workbooks.domain.formulas.engine import Book, Key, Recalculated
from workbooks.domain.formulas.formula import from_stored, from_wire
from workbooks.services import store

MAX_BOOKS = 8  # workbooks a process keeps in memory, the least recently written to dropped first
CATCH_UP = 200  # changes another process made since that are replayed rather than the Book loaded again

_books: OrderedDict[int, tuple[int, Book]] = OrderedDict()
_guard = threading.Lock()


def take(workbook_id: int, rev: int) -> Book:
    """The workbook's Book at revision ``rev`` (the workbook is locked), no longer in the cache."""
    with _guard:
        found = _books.pop(workbook_id, None)
    if found is not None:
        at, book = found
        if at == rev:
            return book
        if at < rev <= at + CATCH_UP and _catch_up(workbook_id, book, at):
            return book
    return load(workbook_id)


def keep(workbook_id: int, rev: int, book: Book) -> None:
    with _guard:
        _books[workbook_id] = (rev, book)
        _books.move_to_end(workbook_id)
        while len(_books) > MAX_BOOKS:
            _books.popitem(last=False)


def forget(workbook_id: int) -> None:
    with _guard:
        _books.pop(workbook_id, None)


def load(workbook_id: int) -> Book:
    """The workbook's live sheets, rows, columns and cells as stored, formulas with their stored values."""
    book, rows, slots_of = selectors.workbook_layout(workbook_id, values=True)
    cells, computed = [], {}
    for sheet, rid, text in rows:
        slots = slots_of.get(sheet)
        if not slots:
            continue
        for slot, value in enumerate(orjson.loads(text)):
            if value is None or slot not in slots:
                continue
            key = (rid, slots[slot])
            if stored.is_formula(value):
                cells.append((key, from_stored(value["f"])))
                computed[key] = stored.from_wire_value(value.get("v"))
            else:
                cells.append((key, value))
    book.load(cells, computed)
    return book


def _catch_up(workbook_id: int, book: Book, at: int) -> bool:
    """Replays the changes after revision ``at`` on the Book, taking the values they logged; False
    when one cannot be (then the Book is loaded again)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, CAST(data AS TEXT), at FROM workbooks_change WHERE workbook_id = %s AND rev > %s ORDER BY rev", [workbook_id, at]
        )
        logged = cursor.fetchall()
    try:
        for kind, data, moment in logged:
            data = orjson.loads(data)
            follow(book, kind, data, store.utc(moment))
            for item in data.get("computed", ()):
                book.take_value((item["row"], item["col"]), stored.from_wire_value(item["value"]))
    except (KeyError, ValueError, TypeError):
        return False
    return True


@dataclass
class Followed:
    """What ``follow`` gives: the stored form of each formula cell to write with the change (by row
    and column id), the new value of each other one whose value alone changed (``values``: only that
    is written), and what the change's ``computed`` and ``formulas`` replaced, item for item (for its
    log entry's ``replaced``: the workbook as it was, ``?rev=R``, is read from them)."""

    cells: dict[Key, dict]
    values: dict[Key, object]
    replaced: dict


def follow(book: Book, kind: str, data: dict, now: datetime) -> Followed:
    """Applies a change (its kind and data, as logged) to the Book and completes the data: each formula
    cell a ``set`` wrote (a cell whose value is a stored formula, or that has ``parts``) gets its
    ``formula`` text and computed ``value``; the change gets ``computed`` (every other cell whose
    value it altered) and, when it rewrote formulas' references, ``formulas``."""
    book.now = now
    written: dict[Key, tuple[int, dict]] = {}
    copied: set[Key] = set()  # a duplicated sheet's formulas: stored whole (their references point into the copy)
    result = Recalculated()
    for step_kind, step in ((s["kind"], s) for s in data["steps"]) if kind == "batch" else [(kind, data)]:
        result.add(_apply(book, step_kind, step, written, copied, undoing=kind == "batch"))
    for key, (sheet, cell) in written.items():
        formula = from_wire(cell["parts"])
        cell["formula"] = formula.text(sheet, book)
        cell["value"] = stored.to_wire(book.computed.get(key)) if key in book.cells else None
    computed = [key for key in result.values if key not in written]
    data["computed"] = [{"sheet": book.row_sheet[r], "row": r, "col": c, "value": stored.to_wire(result.values[(r, c)])} for r, c in computed]
    replaced = {"computed": [stored.to_wire(result.values_before.get(key)) for key in computed]} if computed else {}
    rewritten = [key for key in result.formulas if key in book.cells]
    if rewritten:
        data["formulas"] = [
            {"sheet": book.row_sheet[r], "row": r, "col": c, "formula": book.text((r, c)), "parts": result.formulas[(r, c)].to_wire()}
            for r, c in rewritten
        ]
        replaced["formulas"] = [result.formulas_before[key].to_wire() for key in rewritten]
    whole = {key for key in (*result.formulas, *written, *copied) if key in book.cells}
    cells = {key: stored.slot(book.cells[key].formula, book.computed.get(key)) for key in whole}
    values = {key: stored.to_wire(value) for key, value in result.values.items() if key not in whole and key in book.cells}
    return Followed(cells, values, replaced)


def _apply(book: Book, kind: str, step: dict, written: dict, copied: set, *, undoing: bool) -> Recalculated:
    """One step; ``undoing``: a step of an undo, redo or restore, whose inserts bring deleted rows or
    columns back (formulas that named them compute again)."""
    sheet = step.get("sheet")
    if kind == "set":
        writes = []
        for cell in step["cells"]:
            key = (cell["row"], cell["col"])
            value = cell.get("value")
            if "parts" not in cell and stored.is_formula(value):  # a formula cell as stored (an undo's or a restore's)
                del cell["value"]
                cell["parts"] = value["f"]
            if "parts" in cell:
                writes.append((key, from_wire(cell["parts"])))
                written[key] = (book.row_sheet.get(key[0], sheet), cell)
            else:
                writes.append((key, value))
                written.pop(key, None)
        return book.set(writes)
    if kind in ("insert_rows", "insert_cols"):
        rows = kind == "insert_rows"
        ids = step["rows" if rows else "cols"]
        return book.insert(sheet, rows=rows, before=step["before"], ids=list(ids), revived=undoing)
    if kind in ("delete_rows", "delete_cols"):
        rows = kind == "delete_rows"
        return book.delete(sheet, rows=rows, ids=step["rows" if rows else "cols"])
    if kind in ("add_sheet", "duplicate_sheet"):
        if kind == "duplicate_sheet":
            done = book.duplicate_sheet(step["from"], sheet, step["name"], before=step["before"], cols=step["columns"], rows=step["rows"])
            rows = set(step["rows"])
            copied.update(key for key in book.cells if key[0] in rows)
            return done
        return book.add_sheet(sheet, step["name"], before=step["before"], cols=step["columns"], rows=step["rows"])
    if kind == "rename_sheet":
        book.rename_sheet(sheet, step["name"])
    elif kind == "move_sheet":
        book.move_sheet(sheet, step["before"])
    elif kind == "delete_sheet":
        return book.delete_sheet(sheet)
    return book.touch()
