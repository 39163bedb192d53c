"""Reads of the past: a cell's history, the workbook's versions, and the whole workbook as it was at an
earlier revision (``?rev=R``, and what ``restore`` goes back to). Everything at or above the workbook's
history floor can be read; below it is ``HistoryTruncated``.

The workbook at revision R is the workbook now walked back: rows and columns keep their places whether
deleted or not (tombstones), so only which of them existed at R is worked out from the structural
changes after R; each cell written after R held what its first write after R replaced (each logged
change keeps what it replaced). Both come from one pass over the changes after R, so the cost grows
with the workbook and with the changes after R, not with the whole log. (A cell's history reads the
record of cells written, ``CellEdit``, through its primary key instead.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db.models import TextField
from django.db.models.functions import Cast

from workbooks.domain import history
from workbooks.domain.errors import HistoryTruncated, Invalid, NotFound
from workbooks.domain.formulas import stored
from workbooks.domain.formulas.engine import Book
from workbooks.domain.formulas.formula import from_wire
from workbooks.domain.values import Author, CellValue, CellWrite, Snapshot
from workbooks.models import CellEdit, Row, Sheet, Workbook
from workbooks.models import Change as ChangeRow
from workbooks.models import Column as ColumnRow
from workbooks.selectors import JsonLength, SheetRows, consistent_read, fitted, sheet_head, whole
from workbooks.services import store

MAX_LIMIT = 1000
VERSION_GAP_SECONDS = 300  # one author's changes this close together are one version
MAX_VERSION_CHANGES = 10_000  # and at most this many
CHANGES_PER_READ = 200


@dataclass(frozen=True)
class CellVersion:
    """What a change wrote into a cell: ``value`` is what it computed (a literal is itself), and
    ``formula`` a formula's text as it read at ``rev`` (None for a literal)."""

    rev: int
    at: datetime
    by: Author
    value: CellValue
    formula: str | None = None


def _limit(limit) -> int:
    if limit is None:
        return 100
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def _bounds(workbook: dict, before: int | None) -> int:
    """The revision to read below (``before``, by default past the latest), refused when everything
    below it is below the floor or when it is not a revision."""
    if before is None:
        return workbook["rev"] + 1
    if isinstance(before, bool) or not isinstance(before, int) or before < 1:
        raise Invalid("before must be a revision (a whole number, 1 or more)")
    if before <= workbook["history_floor"]:
        raise HistoryTruncated(f"revisions before {before} are no longer kept")
    return before


def cell_history(*, workbook_id: int, sheet: int, row: int, col: int, before: int | None = None, limit: int | None = None) -> list[CellVersion]:
    """Every value the cell was given, newest first: one entry per change that wrote it, with its
    author and time, down to the history floor."""
    limit = _limit(limit)
    with consistent_read():
        workbook = Workbook.objects.values("rev", "history_floor", "rows_issued", "cols_issued").get(pk=workbook_id)
        if not (1 <= row <= workbook["rows_issued"] and 1 <= col <= workbook["cols_issued"]):
            raise NotFound("no such cell: the workbook never had that row or column")
        # A row or column dropped for good by prune_changes is not found: its history is gone too.
        in_sheet = (
            Row.objects.filter(workbook_id=workbook_id, rid=row, sheet=sheet).exists()
            and ColumnRow.objects.filter(workbook_id=workbook_id, cid=col, sheet=sheet).exists()
        )
        if not in_sheet:
            raise NotFound(f"no such cell in sheet {sheet}")
        below = _bounds(workbook, before)
        edits = CellEdit.objects.filter(workbook_id=workbook_id, row=row, col=col, rev__lt=below, rev__gt=workbook["history_floor"])
        written = list(edits.order_by("-rev").values_list("rev", "value")[:limit])
        made = store.authors_at(workbook_id, [rev for rev, _ in written])
        layouts = PastLayouts(workbook_id) if any(stored.is_formula(value) for _, value in written) else None
        versions = []
        for rev, value in written:
            formula = from_wire(value["f"]).text(sheet, layouts.at(rev)) if stored.is_formula(value) else None
            versions.append(CellVersion(rev, made[rev][2], Author(made[rev][0] or 0, made[rev][1]), stored.shown(value), formula))
    return versions


def versions(*, workbook_id: int, before: int | None = None, limit: int | None = None) -> list[history.Version]:
    """The workbook's history as people read it, newest first (see ``history.group_versions``)."""
    limit = _limit(limit)
    with consistent_read():
        workbook = Workbook.objects.values("rev", "history_floor").get(pk=workbook_id)
        below = _bounds(workbook, before)
        changes = ChangeRow.objects.filter(workbook_id=workbook_id, rev__lt=below, rev__gt=workbook["history_floor"]).order_by("-rev")
        rows = changes.values_list("rev", "author_id", "author_name", "at", "kind").iterator(chunk_size=CHANGES_PER_READ)
        return history.group_versions(
            ((rev, Author(author_id or 0, name), at, kind) for rev, author_id, name, at, kind in rows),
            limit=limit,
            within_seconds=VERSION_GAP_SECONDS,
            most=MAX_VERSION_CHANGES,
        )


@dataclass(frozen=True)
class RowThen:
    """A row as it was at the revision read: its id, its values then in column order as a JSON
    array's text, and the cells that hold something else now (with the value they held then)."""

    id: int
    text: str
    differ: list[CellWrite]


ROWS_PER_READ = 5000


@dataclass(frozen=True)
class SheetThen:
    """A sheet as it was at the revision read: its id, name, column ids in order, and its rows then."""

    id: int
    name: str
    columns: list[int]
    rows: Iterator[RowThen]


@contextmanager
def workbook_at(*, workbook_id: int, rev: int, only: int | None = None) -> Iterator[tuple[str, Iterator[SheetThen]]]:
    """The workbook as it was at revision ``rev`` (kept: at or above the floor): its name then, and its
    sheets then in order (or only the sheet ``only``, if it existed then), each with an iterator of its
    rows then (``RowThen``), in order, read while the context lasts, ROWS_PER_READ rows at a time
    (with the cells written after ``rev`` in them), so that neither a big workbook nor a long
    history is ever whole in memory."""
    with consistent_read():
        workbook = Workbook.objects.values("name", "rev", "history_floor").get(pk=workbook_id)
        if isinstance(rev, bool) or not isinstance(rev, int) or rev > workbook["rev"]:
            raise Invalid(f"rev must be a revision of the workbook, 0 to {workbook['rev']}")
        if rev < workbook["history_floor"]:
            raise HistoryTruncated(f"revision {rev} is no longer kept (the oldest is {workbook['history_floor']})")
        cols = list(ColumnRow.objects.filter(workbook_id=workbook_id).order_by("position").values_list("cid", "deleted_rev", "slot", "sheet"))
        live_rows = Row.objects.filter(workbook_id=workbook_id, deleted_rev__isnull=True).values_list("rid", flat=True)
        sheets_now = Sheet.objects.filter(workbook_id=workbook_id, deleted_rev__isnull=True).values_list("sid", "name", "position")
        then = history.Structure(
            set(live_rows.iterator(chunk_size=ROWS_PER_READ)),
            {cid for cid, dead, _, _ in cols if dead is None},
            workbook["name"],
            {sid: (name, position) for sid, name, position in sheets_now},
        )
        # One pass over the changes after ``rev``, newest first: the structure they changed is
        # rewound, and each cell they wrote gets what its first write after ``rev`` replaced; a
        # formula cell's value is what the first change after ``rev`` that wrote or computed it
        # replaced (``computed`` and ``formulas`` keep what they replaced, item for item).
        held: Cells = {}
        values_then: Cells = {}
        later = ChangeRow.objects.filter(workbook_id=workbook_id, rev__gt=rev, kind__in=(*history.STRUCTURAL_KINDS, "set")).order_by("-rev")
        for kind, data, replaced in later.values_list("kind", "data", "replaced").iterator(chunk_size=CHANGES_PER_READ):
            if kind != "set":
                then.rewind(history.steps_of(kind, data, replaced))
            # The earliest change after rev comes last and wins.
            for item, old in zip(data.get("computed", ()), replaced.get("computed", ()), strict=False):
                values_then.setdefault(item["row"], {})[item["col"]] = old
            for item, old in zip(data.get("formulas", ()), replaced.get("formulas", ()), strict=False):
                held.setdefault(item["row"], {})[item["col"]] = {"f": old}  # its value: below
            for row, col, _, old in history.cells_written(kind, data, replaced):
                held.setdefault(row, {})[col] = old
                values_then.setdefault(row, {})[col] = stored.shown(old)
        order = sorted(then.sheets, key=lambda sid: then.sheets[sid][1])
        if only is not None:
            order = [sid for sid in order if sid == only]

        def sheets_then() -> Iterator[SheetThen]:
            for sid in order:
                columns = [(cid, slot) for cid, _, slot, sheet in cols if sheet == sid and cid in then.cols]
                stored = (
                    Row.objects.filter(workbook_id=workbook_id, sheet=sid)
                    .order_by("position")
                    .annotate(text=Cast("values", TextField()), length=JsonLength("values"))
                )
                stored = stored.values_list("rid", "text", "length").iterator(chunk_size=ROWS_PER_READ)
                rows = _rows_then(columns, (row for row in stored if row[0] in then.rows), held, values_then)
                yield SheetThen(sid, then.sheets[sid][0], [cid for cid, _ in columns], rows)

        yield then.name, sheets_then()


Cells = dict[int, dict[int, CellValue]]  # by row id, then column id


def _rows_then(columns: list[tuple[int, int]], rows: Iterator[tuple[int, str, int]], held: Cells, values_then: Cells) -> Iterator[RowThen]:
    """These rows (id, stored text, its length) as they were at the revision read: each cell written
    after it held what its first write after it replaced (``held``, by row and column), each formula
    cell the value it had then (``values_then``, where a change after it altered that). A row none
    of whose cells changed since is its stored text, as the snapshot sends it, when the slots run in
    column order."""
    width = len(columns)
    in_order = [slot for _, slot in columns] == list(range(width))
    for rid, text, length in rows:
        if in_order and rid not in held and rid not in values_then:
            yield RowThen(rid, fitted(text, length, width), [])
            continue
        saved = orjson.loads(text)
        cells = [saved[slot] if slot < len(saved) else None for _, slot in columns]
        written, computed, differ = held.get(rid, {}), values_then.get(rid, {}), []
        for i, (cid, _) in enumerate(columns):
            now = cells[i]
            if cid in written:
                value = written[cid]
                if stored.is_formula(value) and "v" not in value:  # a formula whose references a delete rewrote
                    value = {"f": value["f"], "v": stored.shown(now)}
                cells[i] = value
                if not _same_content(value, now):
                    differ.append(CellWrite(rid, cid, value))
            if cid in computed and stored.is_formula(cells[i]):
                cells[i] = {"f": cells[i]["f"], "v": computed[cid]}
        yield RowThen(rid, orjson.dumps(cells).decode(), differ)


def _same_content(a, b) -> bool:
    """Whether two stored cells hold the same: for formulas, the same formula (whatever it computed)."""
    if stored.is_formula(a) and stored.is_formula(b):
        return a["f"] == b["f"]
    return type(a) is type(b) and a == b  # True and 1 are equal in Python, not here


class PastLayouts:
    """The workbook's sheets, rows and columns as they were at earlier and earlier revisions (each a
    ``Layout`` to read or show a formula against, as it read then), from one read of its rows and
    columns (tombstones included: they keep their places) and one pass back through its changes,
    inside the caller's transaction."""

    def __init__(self, workbook_id: int):
        self.lines = {}
        for model, key in ((Row, "rid"), (ColumnRow, "cid")):
            found = model.objects.filter(workbook_id=workbook_id).order_by("position").values_list(key, "sheet", "deleted_rev")
            self.lines[model] = list(found.iterator(chunk_size=ROWS_PER_READ))
        sheets_now = Sheet.objects.filter(workbook_id=workbook_id, deleted_rev__isnull=True).values_list("sid", "name", "position")
        self.then = history.Structure(
            {i for i, _, dead in self.lines[Row] if dead is None},
            {i for i, _, dead in self.lines[ColumnRow] if dead is None},
            "",
            {sid: (name, position) for sid, name, position in sheets_now},
        )
        later = ChangeRow.objects.filter(workbook_id=workbook_id, kind__in=history.STRUCTURAL_KINDS).order_by("-rev")
        self.later = later.values_list("rev", "kind", "data", "replaced").iterator(chunk_size=CHANGES_PER_READ)
        self.next = next(self.later, None)
        self.book: Book | None = None

    def at(self, rev: int) -> Book:
        """The layout at ``rev``: at most the revision asked before (the walk goes back only)."""
        while self.next is not None and self.next[0] > rev:
            _, kind, data, replaced = self.next
            self.then.rewind(history.steps_of(kind, data, replaced))
            self.book = None
            self.next = next(self.later, None)
        if self.book is None:
            then = self.then
            order = sorted(then.sheets, key=lambda sid: then.sheets[sid][1])
            rows = {sid: [] for sid in order}
            cols = {sid: [] for sid in order}
            for found, kept, lines in ((rows, then.rows, self.lines[Row]), (cols, then.cols, self.lines[ColumnRow])):
                for i, sheet, _ in lines:
                    if sheet in found and i in kept:
                        found[sheet].append(i)
            self.book = Book(sheets=[(sid, then.sheets[sid][0], cols[sid], rows[sid]) for sid in order])
        return self.book


def layout_at(*, workbook_id: int, rev: int, floor: int) -> Book:
    """The workbook's sheets, rows and columns as they were at revision ``rev`` (where a formula typed
    at ``rev`` is read), inside the caller's transaction; ``HistoryTruncated`` below the floor."""
    if rev < floor:
        raise HistoryTruncated(f"revision {rev} is no longer kept (the oldest is {floor}): read the formula again at the latest")
    return PastLayouts(workbook_id).at(rev)


@contextmanager
def snapshot_rows_at(*, workbook_id: int, rev: int, role: str, only: int | None = None):
    """``GET /api/workbooks/{id}/?rev=R``: as ``selectors.snapshot_rows``, the snapshot as it was at ``rev``
    (but for ``role``, yours now) and its sheets' rows' texts, for ``protocol.snapshot_pieces``."""
    floor = Workbook.objects.values_list("history_floor", flat=True).get(pk=workbook_id)
    with workbook_at(workbook_id=workbook_id, rev=rev, only=only) as (name, sheets):
        head = Snapshot(workbook_id, name, rev, floor, role, ())
        layout = functools.cache(lambda: layout_at(workbook_id=workbook_id, rev=rev, floor=floor))
        yield (
            head,
            ((sheet_head(s.id, s.name, s.columns), SheetRows(((row.id, row.text) for row in s.rows), s.id, s.columns, layout)) for s in sheets),
        )


def snapshot_at(*, workbook_id: int, rev: int, role: str) -> Snapshot:
    """The whole snapshot as it was at ``rev``, in memory (for tests and small workbooks)."""
    with snapshot_rows_at(workbook_id=workbook_id, rev=rev, role=role) as (head, sheets):
        return whole(head, sheets)
