"""Writes. Sheet content changes one way: lock the sheet, check the role, apply, log the change at the
next revision, commit (``commit_operation``; ``commit_sets`` for a batch of ``set`` operations), then
broadcast. HTTP views call ``apply_operation``; sockets ``submit_operation``, which queues and batches.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from sheet import broadcast, protocol, rates, selectors
from sheet.domain import rules
from sheet.domain.errors import Forbidden, Invalid, NotFound, OperationError, TooLarge
from sheet.domain.values import (
    WRITER_ROLES,
    Author,
    Change,
    DeleteCols,
    DeleteRows,
    InsertCols,
    InsertRows,
    LastWrite,
    Limits,
    Operation,
    Rename,
    SetCells,
    Snapshot,
)
from sheet.limits import current as current_limits
from sheet.models import Change as ChangeRow
from sheet.models import Column, Member, Row, Sheet

logger = logging.getLogger(__name__)


class Conflict(Exception):
    """The request contradicts the sheet's state (HTTP 409)."""


@dataclass(frozen=True)
class Applied:
    change: Change
    duplicate: bool  # the op id was applied before; ``change`` is the original
    broadcast: bool = True  # False when the channel layer failed after the commit


def _locked_sheet(sheet_id: int, user, *, as_admin: bool = False) -> tuple[Sheet, str]:
    """The sheet, locked for this transaction, and the user's role; NotFound without a role.
    ``as_admin``: a staff user acting through the admin site, with the owner's rights (_check_staff)."""
    sheet = Sheet.objects.select_for_update().filter(pk=sheet_id).first()
    if as_admin:
        _check_staff(user)
        role = Member.Role.OWNER if sheet else None
    else:
        role = selectors.role_of(user=user, sheet_id=sheet_id) if sheet else None
    if role is None:
        raise NotFound("no such sheet")
    return sheet, role


def _next_positions(model, sheet: Sheet, before_id: int | None, count: int, id_field: str) -> int:
    """Makes room for ``count`` new entries before ``before_id`` (or at the end); returns the first position."""
    if before_id is None:
        last = model.objects.filter(sheet=sheet).aggregate(m=Max("position"))["m"]
        return 0 if last is None else last + 1
    start = model.objects.filter(sheet=sheet, **{id_field: before_id}).values_list("position", flat=True).get()
    model.objects.filter(sheet=sheet, position__gte=start).update(position=F("position") + count)
    return start


def _issued(ids, issued: int) -> list[int]:
    """The ids worth looking up: only issued ones can exist, and any other int may not even fit the column."""
    return [i for i in set(ids) if 1 <= i <= issued]


def _live(model, sheet: Sheet, id_field: str, ids, issued: int) -> set[int]:
    return set(model.objects.filter(sheet=sheet, **{f"{id_field}__in": _issued(ids, issued)}).values_list(id_field, flat=True))


def _apply_insert(sheet: Sheet, operation, limits: Limits) -> dict:
    is_rows = isinstance(operation, InsertRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    count_field, issued_field = ("row_count", "rows_issued") if is_rows else ("col_count", "cols_issued")
    what = "row" if is_rows else "column"
    rules.check_capacity(getattr(sheet, count_field), operation.count, limits.max_rows if is_rows else limits.max_cols, f"{what}s")
    grown = (sheet.row_count + operation.count, sheet.col_count) if is_rows else (sheet.row_count, sheet.col_count + operation.count)
    rules.check_area(*grown, limits.max_cells)
    if operation.before is not None:
        issued = getattr(sheet, issued_field)
        rules.check_insert_anchor(operation.before, live=_live(model, sheet, id_field, [operation.before], issued), issued=issued, what=what)
    if operation.before is not None and not is_rows:
        _insert_cells(sheet.id, selectors.column_ids(sheet_id=sheet.id).index(operation.before), operation.count)
    start = _next_positions(model, sheet, operation.before, operation.count, id_field)
    first_id = getattr(sheet, issued_field) + 1
    ids = list(range(first_id, first_id + operation.count))
    model.objects.bulk_create([model(sheet=sheet, position=start + i, **{id_field: new_id}) for i, new_id in enumerate(ids)], batch_size=1000)
    setattr(sheet, issued_field, ids[-1])
    setattr(sheet, count_field, getattr(sheet, count_field) + operation.count)
    return protocol.change_data(operation.kind, before=operation.before, ids=ids)


def _apply_delete(sheet: Sheet, operation, limits: Limits) -> dict:
    is_rows = isinstance(operation, DeleteRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    requested = operation.rows if is_rows else operation.cols
    issued = sheet.rows_issued if is_rows else sheet.cols_issued
    ids = rules.applied_deletes(requested, live=_live(model, sheet, id_field, requested, issued), issued=issued, what="row" if is_rows else "column")
    if not is_rows and ids:
        order = selectors.column_ids(sheet_id=sheet.id)
        _delete_cells(sheet.id, [order.index(c) for c in ids])
    model.objects.filter(sheet=sheet, **{f"{id_field}__in": list(ids)}).delete()
    count_field = "row_count" if is_rows else "col_count"
    setattr(sheet, count_field, getattr(sheet, count_field) - len(ids))
    return protocol.change_data(operation.kind, ids=ids)


# Columns were inserted or deleted: the rows holding cells right of them change. On PostgreSQL one
# statement does it in the database (100,000 rows x 10 in under a second); elsewhere Python rewrites
# the rows.


def _insert_cells(sheet_id: int, at: int, count: int) -> None:
    """Moves each row's cells from index ``at`` on ``count`` places right, empty cells in between."""
    if connection.vendor == "postgresql":
        head = f"jsonb_path_query_array(\"values\", '$[0 to {at - 1}]') || " if at else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE sheet_row SET "values" = {head}to_jsonb(array_fill(NULL::int, ARRAY[%s])) '  # noqa: S608 (ints)
                f"|| jsonb_path_query_array(\"values\", '$[{at} to last]') "
                'WHERE sheet_id = %s AND jsonb_array_length("values") > %s',
                [count, sheet_id, at],
            )
        return

    def make_room(values: list) -> None:
        values[at:at] = [None] * count

    _rewrite_rows(sheet_id, make_room, longer_than=at)


def _delete_cells(sheet_id: int, indexes: list[int]) -> None:
    """Removes each row's cells at these indexes (those past a row's end are empty already)."""
    gone = sorted(set(indexes), reverse=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE sheet_row SET "values" = "values"{"".join(f" - {i}" for i in gone)} '  # noqa: S608 (ints)
                'WHERE sheet_id = %s AND jsonb_array_length("values") > %s',
                [sheet_id, gone[-1]],
            )
        return

    def drop(values: list) -> None:
        for index in gone:
            if index < len(values):
                del values[index]

    _rewrite_rows(sheet_id, drop, longer_than=gone[-1])


def _rewrite_rows(sheet_id: int, change: Callable[[list], None], *, longer_than: int) -> None:
    """Applies ``change`` to the values of every row that holds more than ``longer_than`` of them,
    a chunk of rows at a time so a 100,000-row sheet is never all in memory (SQLite)."""
    after = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                'SELECT rid, "values" FROM sheet_row WHERE sheet_id = %s AND json_array_length("values") > %s AND rid > %s ORDER BY rid LIMIT %s',
                [sheet_id, longer_than, after, ROWS_PER_UPDATE],
            )
            chunk = cursor.fetchall()
            if not chunk:
                return
            rows = {rid: orjson.loads(text) for rid, text in chunk}
            for values in rows.values():
                change(values)
            _update_rows(cursor, sheet_id, rows)
            after = chunk[-1][0]


def _apply_rename(sheet: Sheet, operation: Rename, limits: Limits) -> dict:
    sheet.name = operation.name
    return protocol.change_data("rename", name=operation.name)


APPLY: dict[type, Callable] = {  # every kind but ``set``, which commit_sets applies
    InsertRows: _apply_insert,
    InsertCols: _apply_insert,
    DeleteRows: _apply_delete,
    DeleteCols: _apply_delete,
    Rename: _apply_rename,
}


def commit_operation(*, sheet_id: int, user, operation: Operation, now: datetime | None = None, as_admin: bool = False) -> Applied:
    """Applies the operation atomically at the sheet's next revision and logs it. Does not broadcast.

    The sheet's row lock (an IMMEDIATE transaction on SQLite) serialises writers across every
    process, so revisions are consecutive and an op id is applied at most once.
    """
    if isinstance(operation, SetCells):
        (result,) = commit_sets(sheet_id=sheet_id, requests=[(user, operation)], now=now)
        if isinstance(result, OperationError):
            raise result
        return result
    limits = current_limits()
    with transaction.atomic():
        sheet, role = _locked_sheet(sheet_id, user, as_admin=as_admin)
        if role not in WRITER_ROLES:
            raise Forbidden("viewers cannot change the sheet")
        original = next(iter(ChangeRow.objects.filter(sheet=sheet, op=operation.op)[:1]), None)
        if original is not None:
            return Applied(selectors.change_value(original), duplicate=True)
        data = APPLY[type(operation)](sheet, operation, limits)
        sheet.rev += 1
        now = now or timezone.now()
        change = Change(sheet.rev, operation.op, Author(user.pk, user.get_username()), now, operation.kind, data)
        ChangeRow.objects.create(
            sheet=sheet, rev=change.rev, op=change.op, author_id=user.pk, author_name=change.by.name, at=now, kind=change.kind, data=data
        )
        sheet.updated_at = now
        sheet.save(update_fields=["rev", "name", "rows_issued", "cols_issued", "row_count", "col_count", "updated_at"])
    return Applied(change, duplicate=False)


def commit_sets(*, sheet_id: int, requests: Sequence[tuple[Any, SetCells]], now: datetime | None = None) -> list[Applied | OperationError]:
    """Commits ``set`` operations on one sheet in one transaction, in order, each at its own revision.

    Group commit: the sheet is locked once and each statement serves every operation, so many edits
    cost about what one does. Each result is what ``commit_operation`` would have given that operation
    alone: its ``Applied``, or the error that left it out (it changed nothing; the others commit).

    This is the hot path of every edit, so it speaks SQL rather than the ORM: one statement locks the
    sheet, one reads everything the batch needs, three write; on PostgreSQL the transaction's BEGIN,
    the lock and the read go in one round trip and the writes and COMMIT in another
    (``_transaction``), and each list of ids or values is one array parameter (``_cursor``). Through
    the ORM a lone edit took ten statements and about 12 ms on PostgreSQL, most of it building
    queries, all of it while holding the sheet's lock; now under 3.
    """
    users = {user.pk for user, _ in requests if getattr(user, "is_authenticated", False)}
    writes = [cell for _, operation in requests for cell in operation.cells]
    # Before the sheet's counters are read, only ids that fit the column are worth looking up;
    # rules.applied_cells then refuses those never issued.
    row_ids, col_ids = _issued((c.row for c in writes), MAX_ID), _issued((c.col for c in writes), MAX_ID)
    with _transaction() as explicit, _cursor() as cursor, _cursor() as reader:
        # Row locks where the database has them; SQLite's IMMEDIATE transaction holds the database.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with _pipeline():  # the reads run after the lock is granted, so they see what its last holder committed
            if explicit:
                cursor.execute("BEGIN")
            if connection.vendor == "postgresql":
                # The statements below are prepared (proj/settings.py). PostgreSQL may run a prepared
                # statement with one generic plan, made once for any parameters, and keeps to it once
                # the plans made for the actual parameters cost more on average. One made while the
                # tables were young (a new database, a new sheet) can read a sheet's whole change log
                # for each op id: one run of 1,000 edits a second fell into it (7,800 rows read per
                # edit, acknowledgements 37 s late). Here every run gets a plan for its parameters;
                # the statement is still not parsed again.
                cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            cursor.execute(f"SELECT rev, rows_issued, cols_issued FROM sheet_sheet WHERE id = %s{lock}", [sheet_id])  # noqa: S608 (constants)
            _read_batch(reader, sheet_id, users=users, ops={o.op for _, o in requests}, rows=row_ids, cols=col_ids)
            locked = cursor.fetchone()
            found = _Found.of(reader.fetchall())
        if locked is None:
            return [NotFound("no such sheet") for _ in requests]
        rev, rows_issued, cols_issued = locked
        roles, rows, live_cols = found.roles, found.rows, found.cols
        originals = _originals(sheet_id, found.ops)
        # Who wrote each cell last, for the sets that say which revision their sender saw: from the
        # log when one of them saw an older revision, and from the batch as it goes.
        based = [o.rev for _, o in requests if o.rev is not None]
        last_writes = _last_writes(reader, sheet_id, since=min(based), latest=rev) if based and min(based) < rev else {}
        now = now or timezone.now()
        results: list[Applied | OperationError] = []
        made: dict[str, Change] = {}
        logged, touched = [], set()
        for user, operation in requests:
            role = roles.get(user.pk) if user.pk in users else None
            try:
                if role is None:
                    raise NotFound("no such sheet")
                if role not in WRITER_ROLES:
                    raise Forbidden("viewers cannot change the sheet")
                if operation.op in originals or operation.op in made:
                    results.append(Applied(made.get(operation.op) or originals[operation.op], duplicate=True))
                    continue
                rules.check_base_rev(operation.rev, rev)
                cells = rules.applied_cells(
                    operation.cells, live_rows=rows.keys(), live_cols=live_cols, rows_issued=rows_issued, cols_issued=cols_issued
                )
            except OperationError as exc:
                results.append(exc)
                continue
            by = Author(user.pk, user.get_username())
            replaced = ()
            if based:
                if operation.rev is not None:
                    replaced = rules.overwritten(
                        cells, base=operation.rev, sender=by, last_writes=last_writes, value_at=functools.partial(_value_at, rows, live_cols)
                    )
                rules.record_writes(last_writes, cells, LastWrite(rev + 1, by))
            for cell in cells:
                values, index = rows[cell.row], live_cols[cell.col]
                if index < len(values):
                    values[index] = cell.value
                elif cell.value is not None:  # past the row's last stored cell (see Row)
                    values += [None] * (index - len(values)) + [cell.value]
                touched.add(cell.row)
            rev += 1
            data = protocol.change_data("set", cells=cells, overwritten=replaced)
            change = made[operation.op] = Change(rev, operation.op, by, now, "set", data)
            logged.append(change)
            results.append(Applied(change, duplicate=False))
        if logged:
            with _pipeline():
                _write_batch(cursor, sheet_id, rows={rid: rows[rid] for rid in touched}, changes=logged, now=now)
                if explicit:
                    cursor.execute("COMMIT")
    return results


ROWS_PER_UPDATE = 5000  # rows per UPDATE statement: SQLite takes at most 32,766 parameters
MAX_ID = 2**63 - 1  # the largest row or column id the database can hold


def _value_at(rows: dict[int, list], live_cols: dict[int, int], cell) -> Any:
    values, index = rows[cell.row], live_cols[cell.col]
    return values[index] if index < len(values) else None


def _last_writes(cursor, sheet_id: int, *, since: int, latest: int) -> dict[tuple[int, int], LastWrite]:
    """Who wrote each cell last among the ``set`` changes after revision ``since``, reading at most
    the newest ``max_sync_changes`` of them (a sender that far behind has its sync answered with
    ``reload`` too; writes before those are not reported)."""
    since = max(since, latest - current_limits().max_sync_changes)
    cursor.execute(
        "SELECT rev, author_id, author_name, CAST(data AS TEXT) FROM sheet_change WHERE sheet_id = %s AND rev > %s AND kind = 'set' ORDER BY rev",
        [sheet_id, since],
    )
    last: dict[tuple[int, int], LastWrite] = {}
    for rev, author_id, author_name, data in cursor.fetchall():
        write = LastWrite(rev, Author(author_id or 0, author_name))
        for cell in orjson.loads(data)["cells"]:
            last[(cell["row"], cell["col"])] = write
    return last


@dataclass
class _Found:
    """What a batch of ``set`` operations needs to know: its users' roles, which of its op ids were
    applied before, the values of the rows it names that exist, and the index in the column order
    of each of its columns that exists."""

    roles: dict[int, str] = field(default_factory=dict)
    ops: set[str] = field(default_factory=set)
    rows: dict[int, list] = field(default_factory=dict)
    cols: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, answer) -> _Found:
        found = cls()
        for tag, key, text in answer:
            if tag == "role":
                found.roles[key] = text
            elif tag == "op":
                found.ops.add(text)
            elif tag == "row":
                found.rows[key] = orjson.loads(text)
            else:
                found.cols[key] = int(text)
        return found


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def _cursor():
    """A cursor for commit_sets. On PostgreSQL one that sends parameters apart from the statement
    (server-side binding) instead of Django's, which quotes them into the SQL text: a 10,000-cell
    paste's values are then neither escaped by psycopg nor parsed back out of the text by PostgreSQL,
    and every list is one array parameter, sent in binary (``%b``: in text each element would be
    escaped, JSON's many quotes one by one). Each statement's text is then the same for every batch,
    so psycopg prepares it (``DATABASE_PREPARED_STATEMENTS`` in proj/settings.py)."""
    if connection.vendor == "postgresql":
        import psycopg  # only where PostgreSQL is used

        connection.ensure_connection()
        return connection.make_cursor(psycopg.Cursor(connection.connection))
    return connection.cursor()


# What a batch of ``set`` operations reads, by kind: its tag, the table, the column it is looked up by
# (and that column's array type), the key the answer gives, and the text it gives (t is the row found).
_BATCH_READS = (
    ("role", "sheet_member", "user_id", "int[]", "t.user_id", "t.role"),
    ("op", "sheet_change", "op", "text[]", "0", "t.op"),
    ("row", "sheet_row", "rid", "bigint[]", "t.rid", 'CAST(t."values" AS TEXT)'),
    (
        "col",
        "sheet_column",
        "cid",
        "bigint[]",
        "t.cid",
        "CAST((SELECT COUNT(*) FROM sheet_column o WHERE o.sheet_id = t.sheet_id AND o.position < t.position) AS TEXT)",
    ),
)


def _read_batch(cursor, sheet_id: int, *, users, ops, rows, cols) -> None:
    """Asks for everything a batch of ``set`` operations needs to know, in one statement (each part
    tagged); ``_Found.of`` reads the answer.

    On PostgreSQL each wanted key is looked up on its own (``LATERAL … LIMIT 1``), through the unique
    index on (sheet, key), whatever the planner believes: on a young table, before its statistics
    say how many changes one sheet has, it otherwise scans all of the sheet's change log for the
    batch's op ids (hundreds of entries a commit in the benchmarks, and growing).
    """
    parts, params = [], []
    for wanted, (tag, table, column, array_type, key, text) in zip((users, ops, rows, cols), _BATCH_READS, strict=True):
        if not wanted:
            continue
        if connection.vendor == "postgresql":
            parts.append(
                f"SELECT '{tag}', f.k, f.v FROM unnest(%b::{array_type}) AS w(k) CROSS JOIN LATERAL "  # noqa: S608 (constants)
                f"(SELECT {key} AS k, {text} AS v FROM {table} t WHERE t.sheet_id = %s AND t.{column} = w.k LIMIT 1) AS f"
            )
            params += [list(wanted), sheet_id]
        else:
            parts.append(f"SELECT '{tag}', {key}, {text} FROM {table} t WHERE t.sheet_id = %s AND t.{column} IN ({_placeholders(wanted)})")  # noqa: S608
            params += [sheet_id, *wanted]
    cursor.execute(" UNION ALL ".join(parts), params)


@contextlib.contextmanager
def _transaction():
    """commit_sets' transaction. Yields True when commit_sets is to send BEGIN and COMMIT itself, with
    its other statements: on PostgreSQL outside any transaction, where Django's would cost a round
    trip of its own for COMMIT. Whatever such a transaction has not committed when commit_sets ends
    (nothing to write, no such sheet, an error) is rolled back here. Elsewhere ``transaction.atomic``.

    psycopg's own errors (a pipeline reports its statements' errors when it ends, outside Django's
    cursor) come out as Django's, as the other database calls' do: a lost connection is an
    ``OperationalError`` (the consumers close the socket with 4503, and its client resends later), a
    refused statement another ``DatabaseError`` (SheetQueues commits the batch's operations one by
    one, and the one at fault is told ``invalid``).
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic(), connection.wrap_database_errors:
            yield False
        return
    import psycopg  # only where PostgreSQL is used

    connection.ensure_connection()
    pg = connection.connection
    try:
        with connection.wrap_database_errors:
            yield True
    finally:
        if not pg.closed and pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):  # then the connection is lost, and so is the transaction
                pg.execute("ROLLBACK")
        if pg.closed:  # lost (PostgreSQL restarted, say): the next batch connects afresh
            connection.close()


def _pipeline():
    """PostgreSQL's pipeline mode: the statements inside go to the server together, one round trip
    for all of them (the server still runs them one after the other). Elsewhere, nothing."""
    if connection.vendor == "postgresql":
        return connection.connection.pipeline()
    return contextlib.nullcontext()


def _originals(sheet_id: int, ops: set[str]) -> dict[str, Change]:
    """The changes that applied these op ids before (a client's retries: rare, so through the ORM)."""
    if not ops:
        return {}
    return {c.op: selectors.change_value(c) for c in ChangeRow.objects.filter(sheet_id=sheet_id, op__in=ops)}


def _write_batch(cursor, sheet_id: int, *, rows: dict[int, list], changes: list[Change], now: datetime) -> None:
    """The rows' new values, the change log's new entries and the sheet's revision."""
    _update_rows(cursor, sheet_id, rows)
    at = connection.ops.adapt_datetimefield_value(now)
    entries = [(c.rev, c.op, c.by.id, c.by.name, c.kind, orjson.dumps(c.data).decode()) for c in changes]
    if connection.vendor == "postgresql":  # one array per column
        cursor.execute(
            "INSERT INTO sheet_change (sheet_id, rev, op, author_id, author_name, at, kind, data) "
            "SELECT %s, e.rev, e.op, e.author_id, e.author_name, %s, e.kind, CAST(e.data AS jsonb) "
            "FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::text[], %b::text[]) "
            "AS e(rev, op, author_id, author_name, kind, data)",
            [sheet_id, at, *map(list, zip(*entries, strict=True))],
        )
    else:
        cursor.execute(
            "INSERT INTO sheet_change (sheet_id, rev, op, author_id, author_name, at, kind, data) VALUES "  # noqa: S608 (placeholders)
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(entries)),
            [v for rev, op, author_id, name, kind, data in entries for v in (sheet_id, rev, op, author_id, name, at, kind, data)],
        )
    cursor.execute("UPDATE sheet_sheet SET rev = %s, updated_at = %s WHERE id = %s", [changes[-1].rev, at, sheet_id])


def _update_rows(cursor, sheet_id: int, rows: dict[int, list]) -> None:
    """Stores the rows' new values: on PostgreSQL in one statement, elsewhere one per ROWS_PER_UPDATE rows."""
    pairs = [(rid, orjson.dumps(values).decode()) for rid, values in rows.items()]
    if connection.vendor == "postgresql":
        if pairs:
            cursor.execute(
                'UPDATE sheet_row SET "values" = CAST(v.vals AS jsonb) FROM unnest(%b::bigint[], %b::text[]) AS v(rid, vals) '
                # The rid test again, so the rows are found through (sheet, rid) rather than by reading
                # all of the sheet's rows, which the planner may think cheaper on a young table.
                "WHERE sheet_row.sheet_id = %s AND sheet_row.rid = ANY(%b::bigint[]) AND sheet_row.rid = v.rid",
                [*map(list, zip(*pairs, strict=True)), sheet_id, list(rows)],
            )
        return
    for start in range(0, len(pairs), ROWS_PER_UPDATE):
        chunk = pairs[start : start + ROWS_PER_UPDATE]
        cursor.execute(
            f'UPDATE sheet_row SET "values" = v.column2 FROM (VALUES {", ".join(["(%s, %s)"] * len(chunk))}) AS v '  # noqa: S608 (placeholders)
            "WHERE sheet_row.sheet_id = %s AND sheet_row.rid = v.column1",
            [*(x for pair in chunk for x in pair), sheet_id],
        )


def apply_operation(*, sheet_id: int, user, operation: Operation, as_admin: bool = False) -> Applied:
    """The write path for synchronous callers (HTTP views, the admin site ``as_admin``, for operations
    other than ``set``): commit, then broadcast."""
    applied = commit_operation(sheet_id=sheet_id, user=user, operation=operation, as_admin=as_admin)
    if not applied.duplicate:
        broadcast.changes_sync(sheet_id, [applied.change])
    return applied


def submit_operation(*, sheet_id: int, user, operation: Operation) -> asyncio.Future:
    """The write path for consumers: queues the operation and returns the future of its ``Applied``
    (or its error), committed in the database thread and then broadcast. Operations are committed in
    the order they were submitted, so a socket may submit its next one before the last is done."""
    return _queues().submit(sheet_id, user, operation)


class SheetQueues:
    """The operations waiting to be committed, per sheet, in one server process.

    While one commit is in the database thread, the operations arriving meanwhile wait; then the
    ``set`` operations at the head of the queue go together (commit_sets: one transaction and one
    broadcast for all of them), or the one operation of another kind goes alone. A lone edit goes at
    once; under load the batches grow instead of the queue, so the sheet's lock is taken once per
    batch rather than once per edit.
    """

    def __init__(self):
        self.waiting: dict[int, collections.deque] = {}

    def submit(self, sheet_id: int, user, operation: Operation) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        queue = self.waiting.get(sheet_id)
        if queue is None:
            queue = self.waiting[sheet_id] = collections.deque()
            asyncio.create_task(self.run(sheet_id, queue))
        queue.append((user, operation, future))
        return future

    async def run(self, sheet_id: int, queue: collections.deque) -> None:
        try:
            while queue:
                batch = [queue.popleft()]
                if isinstance(batch[0][1], SetCells):
                    cells = len(batch[0][1].cells)
                    while queue and isinstance(queue[0][1], SetCells) and len(batch) < MAX_BATCH:
                        cells += len(queue[0][1].cells)
                        if cells > MAX_BATCH_CELLS:
                            break
                        batch.append(queue.popleft())
                await self.commit(sheet_id, batch)
        finally:
            del self.waiting[sheet_id]

    async def commit(self, sheet_id: int, batch) -> None:
        requests = [(user, operation) for user, operation, _ in batch]
        results = await self.results(sheet_id, requests)
        new = [r.change for r in results if isinstance(r, Applied) and not r.duplicate]
        sent = not new or await broadcast.changes(sheet_id, new)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():  # its socket went away meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result if sent or result.duplicate else Applied(result.change, duplicate=False, broadcast=False))

    @staticmethod
    async def results(sheet_id: int, requests) -> list[Applied | Exception]:
        """Each operation's outcome. When the batch's transaction fails while the database is up (data
        it refused, a bug), every operation commits again on its own, so the one at fault fails
        alone and the others, often other people's, are applied. When the database is down, every
        operation of the batch learns it (their sockets close; their clients resend later)."""
        commit = database_sync_to_async(_commit_batch)
        try:
            return await commit(sheet_id, requests)
        except Exception as exc:
            if len(requests) == 1 or isinstance(exc, DATABASE_UNAVAILABLE):
                return [exc] * len(requests)
            logger.warning("sheet %s: a batch of %s operations failed; committing them one by one", sheet_id, len(requests), exc_info=True)
        results: list[Applied | Exception] = []
        for request in requests:
            try:
                results += await commit(sheet_id, [request])
            except Exception as exc:
                if not isinstance(exc, DATABASE_UNAVAILABLE):
                    logger.exception("sheet %s: operation %s failed", sheet_id, request[1].op)
                results.append(exc)
        return results


# The database is not there (down, restarting, the connection lost), as opposed to refusing what one
# operation asked of it.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _commit_batch(sheet_id: int, requests) -> list[Applied | OperationError]:
    if isinstance(requests[0][1], SetCells):
        return commit_sets(sheet_id=sheet_id, requests=requests)
    ((user, operation),) = requests
    try:
        return [commit_operation(sheet_id=sheet_id, user=user, operation=operation)]
    except OperationError as exc:
        return [exc]


# Operations per transaction, and their cells (the first operation always goes, whatever its size):
# more wait for the next one. Bounds how long the sheet stays locked, and the parameters of a statement.
MAX_BATCH = 500
MAX_BATCH_CELLS = 10_000
_loop_queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _queues() -> SheetQueues:
    """This event loop's SheetQueues (one per server process; one per test in the tests)."""
    loop = asyncio.get_running_loop()
    queues = _loop_queues.get(loop)
    if queues is None:
        queues = _loop_queues[loop] = SheetQueues()
    return queues


def create_sheet(*, user, name: str, rows: int = 100, cols: int = 26) -> Snapshot:
    """Creates a sheet the user owns. Its snapshot has no rows when it has more than
    SNAPSHOT_ON_CREATE_CELLS cells: building them would cost far more than the sheet (an empty
    100,000 x 1,000 sheet is a hundred million nulls); the rows come with a GET of the sheet."""
    limits = current_limits()
    for count, limit, what in ((rows, limits.max_rows, "rows"), (cols, limits.max_cols, "columns")):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Invalid(f"{what} must be a whole number, 0 or more")
        rules.check_capacity(0, count, limit, what)
    rules.check_area(rows, cols, limits.max_cells)
    name = protocol.sheet_name(name, limits)
    if Member.objects.filter(user_id=user.pk, role=Member.Role.OWNER).count() >= limits.max_sheets_per_user:
        raise TooLarge(f"one person owns at most {limits.max_sheets_per_user:,} sheets; delete some first")
    rates.spend(
        f"creates:{user.pk}",
        limit=limits.creates_per_hour,
        seconds=3600,
        refusal=f"at most {limits.creates_per_hour} new sheets an hour; try again later",
    )
    with transaction.atomic():
        sheet = Sheet.objects.create(name=name, rows_issued=rows, cols_issued=cols, row_count=rows, col_count=cols)
        Member.objects.create(sheet=sheet, user=user, role=Member.Role.OWNER)
        Column.objects.bulk_create([Column(sheet=sheet, cid=i + 1, position=i) for i in range(cols)], batch_size=1000)
        Row.objects.bulk_create([Row(sheet=sheet, rid=i + 1, position=i) for i in range(rows)], batch_size=1000)
    if rows * cols > SNAPSHOT_ON_CREATE_CELLS:
        return selectors.snapshot_head(sheet_id=sheet.id, role=Member.Role.OWNER)
    return selectors.snapshot(sheet_id=sheet.id, role=Member.Role.OWNER)


SNAPSHOT_ON_CREATE_CELLS = 100_000


def delete_sheet(*, sheet_id: int, user, as_admin: bool = False) -> None:
    """Deletes the sheet and everything in it (its owner does, or staff ``as_admin``); once that is
    committed, its sockets close (4404)."""
    with transaction.atomic():
        sheet, role = _locked_sheet(sheet_id, user, as_admin=as_admin)
        if role != Member.Role.OWNER:
            raise Forbidden("only the owner can delete a sheet")
        sheet.delete()
        _after_commit(broadcast.sheet_deleted_sync, sheet_id)


def _after_commit(send: Callable, *args, **kwargs) -> None:
    """Tells the sockets once the transaction has committed (at once outside one; the admin site makes
    one of each save). A channel layer that fails is logged, not raised: the edit is made, and the
    fan-out hubs' periodic checks close the sockets concerned within seconds all the same."""
    transaction.on_commit(functools.partial(send, *args, **kwargs), robust=True)


def _check_staff(user) -> None:
    """Only an active staff user acts through the admin site (which checks their model permissions)."""
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        raise Forbidden("only staff can act through the admin site")


def _owned_sheet(sheet_id: int, user, *, as_admin: bool = False) -> Sheet:
    sheet, role = _locked_sheet(sheet_id, user, as_admin=as_admin)
    if role != Member.Role.OWNER:
        raise Forbidden("only the owner can share a sheet")
    return sheet


def _no_such_member(username: str) -> NotFound:
    # One answer whether the name is unknown, inactive or (to remove) has no role here: the sharing
    # form must not tell who has an account.
    return NotFound(f"no active user or member named {username!r}")


def _target_user(username: str):
    """The active user of that name (only they can be given a role)."""
    target = get_user_model().objects.filter(username=username, is_active=True).first()
    if target is None:
        raise _no_such_member(username)
    return target


def set_member(*, sheet_id: int, user, username: str, role, as_admin: bool = False) -> bool:
    """Gives the active user ``username`` the editor or viewer role (the owner does, or staff
    ``as_admin``); returns True when the membership is new. A changed role closes that user's sockets
    on the sheet (4409: they reconnect with it)."""
    if role not in (Member.Role.EDITOR, Member.Role.VIEWER):
        raise Invalid('role must be "editor" or "viewer"')
    with transaction.atomic():
        sheet = _owned_sheet(sheet_id, user, as_admin=as_admin)
        target = _target_user(username)
        member = Member.objects.filter(sheet=sheet, user=target).first()
        if member is not None and member.role == Member.Role.OWNER:
            raise Conflict("the owner's role cannot be changed")
        if member is not None and member.role == role:
            return False
        limit = current_limits().max_members
        if member is None and Member.objects.filter(sheet=sheet).count() >= limit:
            raise TooLarge(f"a sheet is shared with at most {limit:,} people")
        Member.objects.update_or_create(sheet=sheet, user=target, defaults={"role": role})
        if member is not None:
            _after_commit(broadcast.member_changed_sync, sheet_id, target.pk, removed=False)
    return member is None


def remove_member(*, sheet_id: int, user, username: str, as_admin: bool = False) -> None:
    """Takes the role of ``username`` away (the owner does, or staff ``as_admin``); that user's sockets
    on the sheet close (4403). A deactivated member's role can be taken away too."""
    with transaction.atomic():
        sheet = _owned_sheet(sheet_id, user, as_admin=as_admin)
        member = Member.objects.filter(sheet=sheet, user__username=username).first()
        if member is None:
            raise _no_such_member(username)
        if member.role == Member.Role.OWNER:
            raise Conflict("the owner cannot be removed")
        member.delete()
        _after_commit(broadcast.member_changed_sync, sheet_id, member.user_id, removed=True)
