"""Group commit of ``set`` operations: many edits of one workbook in one transaction, each at its own
revision, each with its own outcome."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from workbooks import past, protocol, selectors
from workbooks.domain import rules
from workbooks.domain.errors import ERRORS, Forbidden, NotFound, OperationError
from workbooks.domain.formulas import formula
from workbooks.domain.formulas.formula import from_stored
from workbooks.domain.values import WRITER_ROLES, Author, CellWrite, Change, FormulaText, LastWrite, SetCells
from workbooks.models import Change as ChangeRow
from workbooks.models import Refusal, Workbook
from workbooks.services import engines, store
from workbooks.services.outcomes import REMEMBERED, Applied


def commit_sets(*, workbook_id: int, requests: Sequence[tuple[Any, SetCells]], now: datetime | None = None) -> list[Applied | OperationError]:
    """Commits ``set`` operations on one workbook in one transaction, in order, each at its own revision.

    Group commit: the workbook is locked once and each statement serves every operation, so many edits
    cost about what one does. Each result is what ``commit_operation`` would have given that operation
    alone: its ``Applied``, or the error that left it out (it changed nothing; the others commit).

    This is the hot path of every edit, so it goes through the store's SQL rather than the ORM
    (``store.SetsTransaction``): one statement locks the workbook, one reads everything the batch needs,
    three write, in two round trips on PostgreSQL. Through the ORM a lone edit took ten statements and
    about 12 ms on PostgreSQL, most of it building queries, all of it while holding the workbook's lock;
    now under 3.
    """
    users = {user.pk for user, _ in requests if getattr(user, "is_authenticated", False)}
    writes = [cell for _, operation in requests for cell in operation.cells]
    # Before the workbook's counters are read, only ids that fit the column are worth looking up;
    # rules.applied_cells then refuses those never issued.
    row_ids, col_ids = store.issued((c.row for c in writes), store.MAX_ID), store.issued((c.col for c in writes), store.MAX_ID)
    with store.SetsTransaction() as tx:
        locked, found = tx.lock_and_read(workbook_id, users=users, ops={o.op for _, o in requests}, rows=row_ids, cols=col_ids)
        if locked is None:
            return [NotFound("no such workbook") for _ in requests]
        rev, rows_issued, cols_issued, has_formulas = locked
        roles, rows, live_cols = found.roles, found.rows, found.cols
        typed = any(isinstance(cell.value, FormulaText) for cell in writes)
        book = engines.take(workbook_id, rev) if has_formulas or typed else None
        # Formula cells to store in rows or columns the batch did not read: whole, or only their value.
        pending: dict[tuple[int, int], dict] = {}
        pending_values: dict[tuple[int, int], object] = {}
        originals = _originals(workbook_id, found.ops)
        refused = _refused(workbook_id, found.refused)
        remembered = []  # refusals of this batch a resend of the op id is to get again
        # Who wrote each cell last, for the sets that say which revision their sender saw: from the
        # log when one of them saw an older revision, and from the batch as it goes.
        based = [o.rev for _, o in requests if o.rev is not None]
        last_writes = tx.last_writes(workbook_id, since=min(based), latest=rev) if based and min(based) < rev else {}
        now = now or timezone.now()
        results: list[Applied | OperationError] = []
        made: dict[str, Change] = {}
        logged, touched = [], set()
        for user, operation in requests:
            role = roles.get(user.pk) if user.pk in users else None
            try:
                if role is None:
                    raise NotFound("no such workbook")
                if role not in WRITER_ROLES:
                    raise Forbidden("viewers cannot change the workbook")
                if operation.op in originals or operation.op in made:
                    results.append(Applied(made.get(operation.op) or originals[operation.op], duplicate=True))
                    continue
                if operation.op in refused:
                    raise refused[operation.op]
                rules.check_base_rev(operation.rev, rev)
                sheet = _sheet_of(operation, found)
                cells = rules.applied_cells(
                    operation.cells, live_rows=rows.keys(), live_cols=live_cols, rows_issued=rows_issued, cols_issued=cols_issued
                )
                if book is not None:
                    cells = _read_formulas(workbook_id, cells, sheet, operation.rev, rev, book)
            except OperationError as exc:
                results.append(exc)
                if role in WRITER_ROLES and exc.code in REMEMBERED and operation.op not in refused:
                    refused[operation.op] = exc
                    remembered.append((operation.op, exc.code, exc.message, rev))
                continue
            by = Author(user.pk, user.get_username())
            overwritten = ()
            if based:
                if operation.rev is not None:
                    held = functools.partial(_value_at, rows, live_cols, book, sheet)
                    overwritten = rules.overwritten(cells, base=operation.rev, sender=by, last_writes=last_writes, value_at=held)
                rules.record_writes(last_writes, cells, LastWrite(rev + 1, by))
            old = store.put_cells(rows, live_cols, cells)
            touched.update(cell.row for cell in cells)
            rev += 1
            data = protocol.change_data("set", sheet=sheet, cells=cells, overwritten=overwritten)
            replaced = {"values": old}
            if book is not None:
                followed = engines.follow(book, "set", data, now)
                replaced.update(followed.replaced)
                for (rid, cid), slot_value in followed.cells.items():
                    if rid in rows and cid in live_cols:
                        store.put_slot(rows[rid], live_cols[cid], slot_value)
                        touched.add(rid)
                    else:
                        pending[(rid, cid)] = slot_value
                        pending_values.pop((rid, cid), None)
                for (rid, cid), value in followed.values.items():
                    if rid in rows and cid in live_cols and store.is_formula_at(rows[rid], live_cols[cid]):
                        rows[rid][live_cols[cid]] = {"f": rows[rid][live_cols[cid]]["f"], "v": value}
                        touched.add(rid)
                    elif (rid, cid) in pending:
                        pending[(rid, cid)] = {"f": pending[(rid, cid)]["f"], "v": value}
                    else:
                        pending_values[(rid, cid)] = value
            change = made[operation.op] = Change(rev, operation.op, by, now, "set", data, replaced, session=operation.session, group=operation.group)
            logged.append(change)
            results.append(Applied(change, duplicate=False))
        written = {rid: rows[rid] for rid in touched}
        if pending:
            written.update(store.patched_rows(workbook_id, pending, rows=rows))
        values = store.with_slots(workbook_id, pending_values) if pending_values else []
        if logged or remembered:
            tx.write_and_commit(workbook_id, rows=written, values=values, changes=logged, now=now, refusals=remembered, has_formulas=book is not None)
    if book is not None:
        engines.keep(workbook_id, rev, book)
    return results


def _read_formulas(workbook_id: int, cells: tuple[CellWrite, ...], sheet: int, seen: int | None, rev: int, book) -> tuple[CellWrite, ...]:
    """The cells with each formula typed read against the layout of the revision its sender saw
    (``seen``, else the latest), as it is stored (see formulas.stored)."""
    if not any(isinstance(cell.value, FormulaText) for cell in cells):
        return cells
    layout = book
    if seen is not None and seen < rev and store.reshaped_since(workbook_id, seen):
        floor = Workbook.objects.values_list("history_floor", flat=True).get(pk=workbook_id)
        layout = past.layout_at(workbook_id=workbook_id, rev=seen, floor=floor)
    return tuple(
        CellWrite(c.row, c.col, {"f": formula.read(c.value.text, sheet, layout).to_wire(), "v": None}) if isinstance(c.value, FormulaText) else c
        for c in cells
    )


def _sheet_of(operation: SetCells, found: store.Found) -> int:
    """The sheet the operation writes to, which must be live and hold every live row and column it
    names. Without one (an operation a v1 page left waiting): the sheet of its first live row, else
    the first sheet."""
    sid = operation.sheet
    if sid is None:
        sid = next((found.row_sheets[c.row] for c in operation.cells if c.row in found.row_sheets), None) or found.first_sheet()
    if sid not in found.sheets:
        raise NotFound(f"unknown sheet id {sid}")
    name, _, dead = found.sheets[sid]
    if dead:
        raise NotFound(f"sheet “{name}” was deleted; the edit was not applied")
    if len(found.sheets) == 1:  # most workbooks: every row and column is on this sheet
        return sid
    row_sheets, col_sheets = found.row_sheets, found.col_sheets
    for cell in operation.cells:
        if row_sheets.get(cell.row, sid) != sid or col_sheets.get(cell.col, sid) != sid:
            raise NotFound(f"cell ({cell.row}, {cell.col}) is not in sheet “{name}”")
    return sid


def _value_at(rows: dict[int, list], live_cols: dict[int, int], book, sheet: int, cell) -> Any:
    """What a cell holds now: its literal, or its formula's text (FormulaText)."""
    values, slot = rows[cell.row], live_cols[cell.col]
    held = values[slot] if slot < len(values) else None
    if type(held) is dict and book is not None:
        return FormulaText(from_stored(held["f"]).text(sheet, book))
    return held


def _refused(workbook_id: int, ops: set[str]) -> dict[str, OperationError]:
    """The refusals remembered for these op ids (a client resending what it did not see answered: rare,
    so through the ORM)."""
    if not ops:
        return {}
    found = Refusal.objects.filter(workbook_id=workbook_id, op__in=ops).values_list("op", "code", "message")
    return {op: ERRORS[code](message) for op, code, message in found}


def _originals(workbook_id: int, ops: set[str]) -> dict[str, Change]:
    """The changes that applied these op ids before (a client's retries: rare, so through the ORM)."""
    if not ops:
        return {}
    return {c.op: selectors.change_value(c) for c in ChangeRow.objects.filter(workbook_id=workbook_id, op__in=ops)}
