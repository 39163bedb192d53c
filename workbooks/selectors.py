"""Reads: the ORM in, value types out."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.db.models import Func, IntegerField, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from workbooks.domain.errors import HistoryTruncated, NotFound
from workbooks.domain.formulas.engine import Book
from workbooks.domain.formulas.references import text_of_wire
from workbooks.domain.rules import column_title
from workbooks.domain.values import Author, Change, Column, SheetSnapshot, Snapshot, WorkbookSummary
from workbooks.limits import current as current_limits
from workbooks.models import Change as ChangeRow
from workbooks.models import Column as ColumnRow
from workbooks.models import Member, Row, Sheet, Workbook


@contextmanager
def consistent_read():
    """A transaction whose queries all see the database at one moment.

    Inside a caller's transaction (a savepoint here) PostgreSQL no longer lets us choose the
    isolation level; the caller's transaction decides what is seen.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def role_of(*, user, workbook_id: int) -> str | None:
    """The user's role on the workbook, or None when they have none (or are anonymous)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Member.objects.filter(workbook_id=workbook_id, user_id=user.pk).values_list("role", flat=True).first()


arole_of = database_sync_to_async(role_of)


def workbooks_for(*, user) -> list[WorkbookSummary]:
    """The user's workbooks, the most recently changed first: at most MAX_LISTED_WORKBOOKS of them (one
    person owns at most max_workbooks_per_user, but anyone may share a workbook with them)."""
    memberships = (
        Member.objects.filter(user_id=user.pk).select_related("workbook").order_by("-workbook__updated_at", "workbook_id")[:MAX_LISTED_WORKBOOKS]
    )
    return [WorkbookSummary(m.workbook.id, m.workbook.name, m.workbook.rev, m.role, m.workbook.updated_at) for m in memberships]


MAX_LISTED_WORKBOOKS = 5_000


def live_columns(*, workbook_id: int, sheet: int) -> list[tuple[int, int]]:
    """The (id, slot) of each of the sheet's columns, left to right (see Column)."""
    columns = ColumnRow.objects.filter(workbook_id=workbook_id, sheet=sheet, deleted_rev__isnull=True).order_by("position")
    return list(columns.values_list("cid", "slot"))


def check_sheet(*, workbook_id: int, sheet: int) -> None:
    """NotFound unless the workbook has that sheet now (naming it when it was deleted)."""
    found = Sheet.objects.filter(workbook_id=workbook_id, sid=sheet).values_list("name", "deleted_rev").first()
    if found is None:
        raise NotFound(f"unknown sheet id {sheet}")
    if found[1] is not None:
        raise NotFound(f"sheet “{found[0]}” was deleted")


def live_sheets(*, workbook_id: int) -> list[tuple[int, str]]:
    """The (id, name) of each of the workbook's sheets, in tab order."""
    return list(Sheet.objects.filter(workbook_id=workbook_id, deleted_rev__isnull=True).order_by("position").values_list("sid", "name"))


class JsonLength(Func):
    """The number of items in a JSON array."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="jsonb_array_length", **extra)


@contextmanager
def snapshot_rows(
    *, workbook_id: int, role: str, only: int | None = None
) -> Iterator[tuple[Snapshot, Iterator[tuple[SheetSnapshot, Iterator[tuple[int, str]]]]]]:
    """The whole workbook (or its sheet ``only``) at one revision, its rows nearly as stored: the
    snapshot without sheets, and an iterator of each sheet's head (without rows) with an iterator of
    each of its rows' (id, values as a JSON array's text, as long as there are columns) in order,
    read from the database a chunk at a time while the context lasts, so that a big workbook is
    never all in memory. ``protocol.snapshot_pieces`` joins them into the snapshot's text without
    parsing a cell.

    When a sheet's columns' slots run 0, 1, 2, ... left to right (see Row), each row's stored text is
    the answer, padded or cut to the sheet's width; otherwise the cells are put in column order, by
    PostgreSQL in the query, elsewhere here.
    """
    with consistent_read():
        head = snapshot_head(workbook_id=workbook_id, role=role, with_sheets=False)
        sheets = live_sheets(workbook_id=workbook_id)
        if only is not None:
            sheets = [(sid, name) for sid, name in sheets if sid == only]
        with_columns = _with_columns(workbook_id, sheets)
        layout = functools.cache(lambda: workbook_layout(workbook_id)[0])
        yield (
            head,
            (
                (
                    sheet_head(sid, name, [c for c, _ in columns]),
                    SheetRows(_row_texts(workbook_id, sid, columns), sid, [c for c, _ in columns], layout),
                )
                for sid, name, columns in with_columns
            ),
        )


class SheetRows:
    """A sheet's rows as a snapshot sends them, (id, values as a JSON array's text), each formula cell
    (see formulas.stored) shown by its computed value; once read, ``formulas()`` gives the sheet's
    formula cells as the snapshot lists them, their text rendered against ``layout()`` (read only
    when the sheet has any). Rows without a formula (which a row's text says without parsing it:
    no literal is a JSON object) pass as they are."""

    def __init__(self, texts, sheet: int, column_ids: list[int], layout):
        self.texts, self.sheet, self.column_ids, self.layout = texts, sheet, column_ids, layout
        self.found: list[tuple[int, int, list]] = []

    def __iter__(self):
        found, column_ids = self.found, self.column_ids
        for rid, text in self.texts:
            if '{"f"' in text:
                values = orjson.loads(text)
                for i, value in enumerate(values):
                    if type(value) is dict:
                        found.append((rid, column_ids[i], value["f"]))
                        values[i] = value.get("v")
                text = orjson.dumps(values).decode()
            yield rid, text

    def formulas(self) -> list[dict]:
        if not self.found:
            return []
        layout = self.layout()
        return [{"row": r, "col": c, "formula": text_of_wire(parts, self.sheet, layout), "parts": parts} for r, c, parts in self.found]


def _with_columns(workbook_id: int, sheets):
    for sid, name in sheets:
        yield sid, name, live_columns(workbook_id=workbook_id, sheet=sid)


def workbook_layout(workbook_id: int, *, values: bool = False) -> tuple[Book, list[tuple], dict[int, dict[int, int]]]:
    """A Book of the workbook's live sheets, rows and columns (no cells), the rows read (sheet, id and,
    with ``values``, their stored values' text) and each sheet's columns by slot."""
    text = ', CAST("values" AS TEXT)' if values else ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sid, name FROM workbooks_sheet WHERE workbook_id = %s AND deleted_rev IS NULL ORDER BY position", [workbook_id])
        sheets = cursor.fetchall()
        cursor.execute(
            "SELECT sheet, cid, slot FROM workbooks_column WHERE workbook_id = %s AND deleted_rev IS NULL ORDER BY sheet, position", [workbook_id]
        )
        columns = cursor.fetchall()
        cursor.execute(
            f"SELECT sheet, rid{text} FROM workbooks_row WHERE workbook_id = %s AND deleted_rev IS NULL ORDER BY sheet, position",  # noqa: S608
            [workbook_id],
        )
        rows = cursor.fetchall()
    cols_of: dict[int, list[int]] = {sid: [] for sid, _ in sheets}
    slots_of: dict[int, dict[int, int]] = {sid: {} for sid, _ in sheets}
    for sheet, cid, slot in columns:
        if sheet in cols_of:
            cols_of[sheet].append(cid)
            slots_of[sheet][slot] = cid
    rows_of: dict[int, list[int]] = {sid: [] for sid, _ in sheets}
    for sheet, rid, *_ in rows:
        if sheet in rows_of:
            rows_of[sheet].append(rid)
    return Book(sheets=[(sid, name, cols_of[sid], rows_of[sid]) for sid, name in sheets]), rows, slots_of


def sheet_head(sid: int, name: str, column_ids: list[int]) -> SheetSnapshot:
    """A sheet of a snapshot without its rows: its columns titled by their places."""
    return SheetSnapshot(sid, name, tuple(Column(cid, column_title(i)) for i, cid in enumerate(column_ids)), rows=None)


def _row_texts(workbook_id: int, sheet: int, columns: list[tuple[int, int]]) -> Iterator[tuple[int, str]]:
    slots = [slot for _, slot in columns]
    width = len(slots)
    rows = Row.objects.filter(workbook_id=workbook_id, sheet=sheet, deleted_rev__isnull=True).order_by("position")
    if slots == list(range(width)):
        stored = rows.annotate(text=Cast("values", TextField()), length=JsonLength("values"))
        stored = stored.values_list("rid", "text", "length").iterator(chunk_size=ROWS_PER_READ)
        return ((rid, fitted(text, length, width)) for rid, text, length in stored)
    if connection.vendor == "postgresql":
        stored = rows.annotate(text=RawSQL(_in_column_order(slots), ()))  # noqa: S611 (ints)
        return stored.values_list("rid", "text").iterator(chunk_size=ROWS_PER_READ)
    stored = rows.values_list("rid", "values").iterator(chunk_size=ROWS_PER_READ)
    return ((rid, orjson.dumps([values[s] if s < len(values) else None for s in slots]).decode()) for rid, values in stored)


ROWS_PER_READ = 5000


def _in_column_order(slots: list[int]) -> str:
    """PostgreSQL's text of a row's cells at these slots (ints), in this order: arrays of at most 100
    items (a function's most arguments), joined."""
    parts = (", ".join(f'"workbooks_row"."values" -> {int(s)}' for s in slots[i : i + 100]) for i in range(0, len(slots), 100))
    return "CAST(" + " || ".join(f"jsonb_build_array({p})" for p in parts) + " AS TEXT)"


def snapshot_head(*, workbook_id: int, role: str, with_sheets: bool = True) -> Snapshot:
    """The workbook's name and revision, and (``with_sheets``) its sheets with their columns, ``rows``
    None (not read)."""
    workbook = Workbook.objects.get(pk=workbook_id)
    sheets = ()
    if with_sheets:
        sheets = tuple(
            sheet_head(sid, name, [c for c, _ in columns]) for sid, name, columns in _with_columns(workbook_id, live_sheets(workbook_id=workbook_id))
        )
    return Snapshot(workbook.id, workbook.name, workbook.rev, workbook.history_floor, role, sheets)


def fitted(text: str, length: int, width: int) -> str:
    """A stored row's JSON array, ``length`` items long, as ``width`` items: the empty cells past its
    end added, or the cells of deleted columns past the last live one cut."""
    if length == width:
        return text
    if length > width:
        return orjson.dumps(orjson.loads(text)[:width]).decode()
    nulls = ",".join(["null"] * (width - length))
    return text.rstrip()[:-1] + ("," if length else "") + nulls + "]"


def snapshot(*, workbook_id: int, role: str) -> Snapshot:
    """The whole workbook at one revision: each sheet's columns, and every row's values in column order."""
    with snapshot_rows(workbook_id=workbook_id, role=role) as (head, sheets):
        return whole(head, sheets)


def whole(head: Snapshot, sheets) -> Snapshot:
    """The snapshot ``snapshot_rows`` (or ``past.snapshot_rows_at``) reads, with every row in memory."""
    read = []
    for sheet, texts in sheets:
        rows = tuple((rid, tuple(orjson.loads(text))) for rid, text in texts)
        read.append(dataclasses.replace(sheet, rows=rows, formulas=tuple(texts.formulas())))
    return dataclasses.replace(head, sheets=tuple(read))


def workbook_name(*, workbook_id: int) -> str:
    return Workbook.objects.values_list("name", flat=True).get(pk=workbook_id)


def workbook_rev(*, workbook_id: int) -> int | None:
    return Workbook.objects.filter(pk=workbook_id).values_list("rev", flat=True).first()


aworkbook_rev = database_sync_to_async(workbook_rev)


def change_value(row: ChangeRow) -> Change:
    data = row.data
    if row.kind == "set" and "overwritten" not in data:  # logged before sets reported what they replaced
        data = {**data, "overwritten": []}
    by = Author(row.author_id or 0, row.author_name)
    return Change(row.rev, row.op, by, row.at, row.kind, data, row.replaced, session=row.session, group=row.group)


@dataclass(frozen=True)
class ChangesSince:
    rev: int
    changes: tuple[Change, ...]


def changes_since(*, workbook_id: int, since: int, limit: int | None = None, max_bytes: int | None = None) -> ChangesSince:
    """Every change after revision ``since``, in order, with the workbook's revision when read.

    Raises HistoryTruncated when some are no longer kept, when ``since`` is ahead of the workbook, or
    when there are more than ``limit`` of them or they take more than ``max_bytes`` as sent
    (default: the deployment's max_sync_bytes): a snapshot is then the cheaper way to catch up. The
    log is read a few entries at a time, so a refusal never held more than the limit in memory.
    """
    max_bytes = current_limits().max_sync_bytes if max_bytes is None else max_bytes
    with consistent_read():
        workbook = Workbook.objects.filter(pk=workbook_id).values("rev", "history_floor").first()
        if workbook is None:
            raise HistoryTruncated("the workbook is gone")
        if since < workbook["history_floor"] or since > workbook["rev"]:
            raise HistoryTruncated(f"changes after revision {since} are not available")
        if limit is not None and workbook["rev"] - since > limit:
            raise HistoryTruncated(f"more than {limit} changes to catch up on")
        rows = ChangeRow.objects.filter(workbook_id=workbook_id, rev__gt=since, rev__lte=workbook["rev"]).order_by("rev")
        changes, size = [], 0
        for row in rows.iterator(chunk_size=CHANGES_PER_READ):
            size += len(orjson.dumps(row.data)) + CHANGE_OVERHEAD
            if size > max_bytes:
                raise HistoryTruncated(f"more than {max_bytes:,} bytes of changes to catch up on")
            changes.append(change_value(row))
        return ChangesSince(workbook["rev"], tuple(changes))


CHANGES_PER_READ = 20  # a change holds up to a message's worth (1 MiB) of cells
CHANGE_OVERHEAD = 150  # bytes a change takes on the wire besides its data: rev, op, author, time


achanges_since = database_sync_to_async(changes_since)


def members(*, workbook_id: int) -> list[tuple[str, str]]:
    """(username, role) pairs, the owner first."""
    order = {"owner": 0, "editor": 1, "viewer": 2}
    pairs = Member.objects.filter(workbook_id=workbook_id).values_list("user__username", "role")
    return sorted(pairs, key=lambda p: (order[p[1]], p[0]))
