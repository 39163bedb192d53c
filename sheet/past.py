"""Reads of the past: a cell's history, the sheet's versions, and the whole sheet as it was at an
earlier revision (``?rev=R``, and what ``restore`` goes back to). Everything at or above the sheet's
history floor can be read; below it is ``HistoryTruncated``.

The sheet at revision R is the sheet now walked back: rows and columns keep their places whether
deleted or not (tombstones), so only which of them existed at R is worked out from the structural
changes after R; each cell written after R held what its first write after R replaced (``CellEdit``).
The cost grows with the sheet and with the changes after R, not with the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sheet.domain import history
from sheet.domain.errors import HistoryTruncated, Invalid, NotFound
from sheet.domain.rules import column_title
from sheet.domain.values import Author, CellValue, CellWrite, Column, Snapshot
from sheet.models import CellEdit, Row, Sheet
from sheet.models import Change as ChangeRow
from sheet.models import Column as ColumnRow
from sheet.selectors import consistent_read

MAX_LIMIT = 1000
VERSION_GAP_SECONDS = 300  # one author's changes this close together are one version
MAX_VERSION_CHANGES = 10_000  # and at most this many
CHANGES_PER_READ = 200


@dataclass(frozen=True)
class CellVersion:
    rev: int
    at: datetime
    by: Author
    value: CellValue


def _limit(limit) -> int:
    if limit is None:
        return 100
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def _bounds(sheet: dict, before: int | None) -> int:
    """The revision to read below (``before``, by default past the latest), refused when everything
    below it is below the floor or when it is not a revision."""
    if before is None:
        return sheet["rev"] + 1
    if isinstance(before, bool) or not isinstance(before, int) or before < 1:
        raise Invalid("before must be a revision (a whole number, 1 or more)")
    if before <= sheet["history_floor"]:
        raise HistoryTruncated(f"revisions before {before} are no longer kept")
    return before


def cell_history(*, sheet_id: int, row: int, col: int, before: int | None = None, limit: int | None = None) -> list[CellVersion]:
    """Every value the cell was given, newest first: one entry per change that wrote it, with its
    author and time, down to the history floor."""
    limit = _limit(limit)
    with consistent_read():
        sheet = Sheet.objects.values("rev", "history_floor", "rows_issued", "cols_issued").get(pk=sheet_id)
        if not (1 <= row <= sheet["rows_issued"] and 1 <= col <= sheet["cols_issued"]):
            raise NotFound("no such cell: the sheet never had that row or column")
        below = _bounds(sheet, before)
        edits = CellEdit.objects.filter(sheet_id=sheet_id, row=row, col=col, rev__lt=below, rev__gt=sheet["history_floor"])
        written = list(edits.order_by("-rev").values_list("rev", "value")[:limit])
        made = ChangeRow.objects.filter(sheet_id=sheet_id, rev__in=[rev for rev, _ in written])
        authors = {rev: (Author(author_id or 0, name), at) for rev, author_id, name, at in made.values_list("rev", "author_id", "author_name", "at")}
    return [CellVersion(rev, authors[rev][1], authors[rev][0], value) for rev, value in written]


def versions(*, sheet_id: int, before: int | None = None, limit: int | None = None) -> list[history.Version]:
    """The sheet's history as people read it, newest first (see ``history.group_versions``)."""
    limit = _limit(limit)
    with consistent_read():
        sheet = Sheet.objects.values("rev", "history_floor").get(pk=sheet_id)
        below = _bounds(sheet, before)
        changes = ChangeRow.objects.filter(sheet_id=sheet_id, rev__lt=below, rev__gt=sheet["history_floor"]).order_by("-rev")
        rows = changes.values_list("rev", "author_id", "author_name", "at", "kind").iterator(chunk_size=CHANGES_PER_READ)
        return history.group_versions(
            ((rev, Author(author_id or 0, name), at, kind) for rev, author_id, name, at, kind in rows),
            limit=limit,
            within_seconds=VERSION_GAP_SECONDS,
            most=MAX_VERSION_CHANGES,
        )


@dataclass(frozen=True)
class SheetAt:
    """The sheet at a revision: its name, column ids and rows (id, values in column order), in order;
    and ``differ``, the cells of those rows and columns that hold something else now (with the
    value they held then)."""

    rev: int
    name: str
    columns: list[int]
    rows: list[tuple[int, list[CellValue]]]
    differ: list[CellWrite]


def sheet_at(*, sheet_id: int, rev: int) -> SheetAt:
    """The sheet as it was at revision ``rev`` (kept: at or above the floor)."""
    with consistent_read():
        sheet = Sheet.objects.values("name", "rev", "history_floor").get(pk=sheet_id)
        if isinstance(rev, bool) or not isinstance(rev, int) or rev > sheet["rev"]:
            raise Invalid(f"rev must be a revision of the sheet, 0 to {sheet['rev']}")
        if rev < sheet["history_floor"]:
            raise HistoryTruncated(f"revision {rev} is no longer kept (the oldest is {sheet['history_floor']})")
        rows = list(Row.objects.filter(sheet_id=sheet_id).order_by("position").values_list("rid", "deleted_rev", "values"))
        cols = list(ColumnRow.objects.filter(sheet_id=sheet_id).order_by("position").values_list("cid", "deleted_rev", "slot"))
        then = history.Structure({rid for rid, dead, _ in rows if dead is None}, {cid for cid, dead, _ in cols if dead is None}, sheet["name"])
        later = ChangeRow.objects.filter(sheet_id=sheet_id, rev__gt=rev, kind__in=history.STRUCTURAL_KINDS).order_by("-rev")
        for kind, data, replaced in later.values_list("kind", "data", "replaced").iterator(chunk_size=CHANGES_PER_READ):
            then.rewind(history.steps_of(kind, data, replaced))
        held: dict[int, dict[int, CellValue]] = {}  # row -> column -> what a cell written after rev held at rev
        edits = CellEdit.objects.filter(sheet_id=sheet_id, rev__gt=rev).order_by("-rev").values_list("row", "col", "old")
        for row, col, old in edits.iterator(chunk_size=5000):
            held.setdefault(row, {})[col] = old  # the earliest write after rev comes last and wins
    columns = [(cid, slot) for cid, _, slot in cols if cid in then.cols]
    values, differ = [], []
    for rid, _, stored in rows:
        if rid not in then.rows:
            continue
        cells = [stored[slot] if slot < len(stored) else None for _, slot in columns]
        written = held.get(rid)
        for i, (cid, _) in enumerate(columns if written else ()):
            if cid in written:
                now, value = cells[i], written[cid]
                cells[i] = value
                if type(value) is not type(now) or value != now:  # True and 1 are equal in Python, not here
                    differ.append(CellWrite(rid, cid, value))
        values.append((rid, cells))
    return SheetAt(rev, then.name, [cid for cid, _ in columns], values, differ)


def snapshot_at(*, sheet_id: int, rev: int, role: str) -> Snapshot:
    """``GET /api/sheets/{id}/?rev=R``: the snapshot as it was at ``rev``, but for ``role`` (yours now)."""
    at = sheet_at(sheet_id=sheet_id, rev=rev)
    columns = tuple(Column(cid, column_title(i)) for i, cid in enumerate(at.columns))
    return Snapshot(sheet_id, at.name, rev, role, columns, rows=tuple((rid, tuple(values)) for rid, values in at.rows))
