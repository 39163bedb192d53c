"""Reads: the ORM in, value types out."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from sheet.domain.rules import column_title
from sheet.domain.values import Author, Change, Column, SheetSummary, Snapshot
from sheet.models import Change as ChangeRow
from sheet.models import Column as ColumnRow
from sheet.models import Member, Row, Sheet


class HistoryTruncated(Exception):
    """The changes asked for are no longer kept; the client needs a fresh snapshot."""


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


def role_of(*, user, sheet_id: int) -> str | None:
    """The user's role on the sheet, or None when they have none (or are anonymous)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Member.objects.filter(sheet_id=sheet_id, user_id=user.pk).values_list("role", flat=True).first()


arole_of = database_sync_to_async(role_of)


def sheets_for(*, user) -> list[SheetSummary]:
    memberships = Member.objects.filter(user_id=user.pk).select_related("sheet").order_by("-sheet__updated_at", "sheet_id")
    return [SheetSummary(m.sheet.id, m.sheet.name, m.sheet.rev, m.role, m.sheet.updated_at) for m in memberships]


def rows_with_values(sheet_id: int):
    """(row id, values dict) in order. The JSON is read as text and parsed with orjson: Django's
    JSONField parses each row with the json module, the larger part of a 100,000-row snapshot's time."""
    rows = Row.objects.filter(sheet_id=sheet_id).order_by("position").annotate(raw=Cast("values", TextField())).values_list("rid", "raw")
    for rid, raw in rows.iterator(chunk_size=5000):
        yield rid, orjson.loads(raw)


def snapshot(*, sheet_id: int, role: str) -> Snapshot:
    """The whole sheet at one revision: its columns, and every row's values in column order."""
    with consistent_read():
        sheet = Sheet.objects.get(pk=sheet_id)
        col_ids = list(ColumnRow.objects.filter(sheet_id=sheet_id).order_by("position").values_list("cid", flat=True))
        keys = [str(c) for c in col_ids]
        rows = tuple((rid, tuple(map(values.get, keys))) for rid, values in rows_with_values(sheet_id))
    columns = tuple(Column(cid, column_title(i)) for i, cid in enumerate(col_ids))
    return Snapshot(sheet.id, sheet.name, sheet.rev, role, columns, rows)


def sheet_name(*, sheet_id: int) -> str:
    return Sheet.objects.values_list("name", flat=True).get(pk=sheet_id)


def sheet_rev(*, sheet_id: int) -> int | None:
    return Sheet.objects.filter(pk=sheet_id).values_list("rev", flat=True).first()


asheet_rev = database_sync_to_async(sheet_rev)


def change_value(row: ChangeRow) -> Change:
    return Change(row.rev, row.op, Author(row.author_id or 0, row.author_name), row.at, row.kind, row.data)


@dataclass(frozen=True)
class ChangesSince:
    rev: int
    changes: tuple[Change, ...]


def changes_since(*, sheet_id: int, since: int, limit: int | None = None) -> ChangesSince:
    """Every change after revision ``since``, in order, with the sheet's revision when read.

    Raises HistoryTruncated when some are no longer kept, when ``since`` is ahead of the sheet,
    or when there are more than ``limit`` of them (a snapshot is then the cheaper way to catch up).
    """
    with consistent_read():
        sheet = Sheet.objects.filter(pk=sheet_id).values("rev", "history_floor").first()
        if sheet is None:
            raise HistoryTruncated("the sheet is gone")
        if since < sheet["history_floor"] or since > sheet["rev"]:
            raise HistoryTruncated(f"changes after revision {since} are not available")
        if limit is not None and sheet["rev"] - since > limit:
            raise HistoryTruncated(f"more than {limit} changes to catch up on")
        rows = ChangeRow.objects.filter(sheet_id=sheet_id, rev__gt=since, rev__lte=sheet["rev"]).order_by("rev")
        return ChangesSince(sheet["rev"], tuple(change_value(r) for r in rows))


achanges_since = database_sync_to_async(changes_since)


def members(*, sheet_id: int) -> list[tuple[str, str]]:
    """(username, role) pairs, the owner first."""
    order = {"owner": 0, "editor": 1, "viewer": 2}
    pairs = Member.objects.filter(sheet_id=sheet_id).values_list("user__username", "role")
    return sorted(pairs, key=lambda p: (order[p[1]], p[0]))
