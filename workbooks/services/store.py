"""The SQL of the write path, and nothing else knows it: the batch of ``set`` operations' one read
and its writes, its transaction, and the clearing of deleted columns' cells. PostgreSQL gets one
statement per job with arrays as parameters, pipelined; SQLite the plain equivalent."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from django.db import connection, transaction

from workbooks.domain import history
from workbooks.domain.errors import ERRORS, OperationError
from workbooks.domain.values import Author, Change, LastWrite
from workbooks.limits import current as current_limits


def issued(ids, limit: int) -> list[int]:
    """The ids worth looking up (1 to ``limit``, the most ever issued): only issued ones can exist, and
    any other int may not even fit the column."""
    return [i for i in set(ids) if 1 <= i <= limit]


ROWS_PER_UPDATE = 5000  # rows per UPDATE statement: SQLite takes at most 32,766 parameters


MAX_ID = 2**63 - 1  # the largest row or column id the database can hold


def clear_slots(workbook_id: int, sheet: int, slots: list[int]) -> None:
    """Empties the cells at these slots in every row of the sheet (deleted columns' cells, once no
    kept change can bring the columns back), ROWS_PER_UPDATE rows per transaction so that no edit
    waits long: nothing else writes these cells, so the workbook itself is not locked, only the rows of
    the chunk at hand (where the database has row locks; SQLite's transaction holds it all)."""
    lowest, gone = min(slots), set(slots)
    length = "jsonb_array_length" if connection.vendor == "postgresql" else "json_array_length"
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    after = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f'SELECT rid, "values" FROM workbooks_row WHERE workbook_id = %s AND sheet = %s AND rid > %s AND {length}("values") > %s '  # noqa: S608
                f"ORDER BY rid LIMIT %s{lock}",
                [workbook_id, sheet, after, lowest, ROWS_PER_UPDATE],
            )
            chunk = cursor.fetchall()
            if not chunk:
                return
            rows = {}
            for rid, text in chunk:
                values = [None if i in gone else v for i, v in enumerate(orjson.loads(text) if isinstance(text, str) else text)]
                while values and values[-1] is None:
                    values.pop()
                rows[rid] = values
            update_rows(cursor, workbook_id, rows)
            after = chunk[-1][0]


def cells_at_slots(workbook_id: int, sheet: int, slots: list[int]) -> list[tuple[int, list]]:
    """Each live row's of the sheet (id, its cells at these slots), in order, for the rows that hold any of them:
    only those cells are read out of each row's array, by the database."""
    if connection.vendor == "postgresql":
        picks, params, length = [f'CAST("values" -> {int(s)} AS TEXT)' for s in slots], [], "jsonb_array_length"
    else:
        picks, params, length = ['"values" -> %s'] * len(slots), [f"$[{int(s)}]" for s in slots], "json_array_length"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT rid, {', '.join(picks)} FROM workbooks_row "  # noqa: S608 (ints)
            f'WHERE workbook_id = %s AND sheet = %s AND deleted_rev IS NULL AND {length}("values") > %s ORDER BY position',
            [*params, workbook_id, sheet, min(slots)],
        )
        return [(rid, [None if text is None else orjson.loads(text) for text in texts]) for rid, *texts in cursor.fetchall()]


def authors_at(workbook_id: int, revs: list[int]) -> dict[int, tuple[int | None, str, datetime]]:
    """(author id, author name, time) of the changes at these revisions. On PostgreSQL each is
    looked up on its own through the unique index on (workbook, rev), whatever the planner believes:
    with statistics taken before a big log grew, ``rev IN (…)`` read all of the workbook's changes
    (0.2 s for 1,000 revisions among 1,000,000). SQLite plans by the index anyway."""
    if not revs:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT f.rev, f.author_id, f.author_name, f.at FROM unnest(%s::bigint[]) AS w(rev) CROSS JOIN LATERAL "
                "(SELECT c.rev, c.author_id, c.author_name, c.at FROM workbooks_change c WHERE c.workbook_id = %s AND c.rev = w.rev LIMIT 1) AS f",
                [list(revs), workbook_id],
            )
            return {rev: (author_id, name, at) for rev, author_id, name, at in cursor.fetchall()}
        cursor.execute(
            f"SELECT rev, author_id, author_name, at FROM workbooks_change WHERE workbook_id = %s AND rev IN ({placeholders(revs)})",  # noqa: S608
            [workbook_id, *revs],
        )
        return {rev: (author_id, name, utc(at)) for rev, author_id, name, at in cursor.fetchall()}


def utc(moment) -> datetime:
    """SQLite keeps a time as UTC without its zone (USE_TZ); Django's driver may give it as text."""
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def last_writes(cursor, workbook_id: int, *, since: int, latest: int) -> dict[tuple[int, int], LastWrite]:
    """Who wrote each cell last among the ``set`` changes after revision ``since``, reading at most
    the newest ``max_sync_changes`` of them (a sender that far behind has its sync answered with
    ``reload`` too; writes before those are not reported)."""
    since = max(since, latest - current_limits().max_sync_changes)
    cursor.execute(
        "SELECT rev, author_id, author_name, CAST(data AS TEXT) FROM workbooks_change "
        "WHERE workbook_id = %s AND rev > %s AND kind = 'set' ORDER BY rev",
        [workbook_id, since],
    )
    last: dict[tuple[int, int], LastWrite] = {}
    for rev, author_id, author_name, data in cursor.fetchall():
        write = LastWrite(rev, Author(author_id or 0, author_name))
        for cell in orjson.loads(data)["cells"]:
            last[(cell["row"], cell["col"])] = write
    return last


@dataclass
class Found:
    """What a batch of ``set`` operations needs to know: its users' roles, which of its op ids were
    applied before, the values and sheet of the live rows it names, the slot and sheet of each of its
    live columns (see Row), and the workbook's sheets (id: name, position, deleted or not)."""

    roles: dict[int, str] = field(default_factory=dict)
    ops: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    rows: dict[int, list] = field(default_factory=dict)
    cols: dict[int, int] = field(default_factory=dict)
    row_sheets: dict[int, int] = field(default_factory=dict)
    col_sheets: dict[int, int] = field(default_factory=dict)
    sheets: dict[int, tuple[str, int, bool]] = field(default_factory=dict)

    @classmethod
    def of(cls, answer) -> Found:
        found = cls()
        for tag, key, text in answer:
            if tag == "role":
                found.roles[key] = text
            elif tag == "op":
                found.ops.add(text)
            elif tag == "refused":
                found.refused.add(text)
            elif tag == "row":
                sheet, values = text.split(" ", 1)
                found.rows[key], found.row_sheets[key] = orjson.loads(values), int(sheet)
            elif tag == "col":
                sheet, slot = text.split(" ", 1)
                found.cols[key], found.col_sheets[key] = int(slot), int(sheet)
            else:
                name, position, dead = orjson.loads(text)
                found.sheets[key] = (name, position, dead)
        return found

    def first_sheet(self) -> int | None:
        live = [(position, sid) for sid, (_, position, dead) in self.sheets.items() if not dead]
        return min(live)[1] if live else None


def placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def batch_cursor():
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
# Deleted rows and columns (tombstones) are not found.
_BATCH_READS = (
    ("role", "workbooks_member", "user_id", "int[]", "t.user_id", "t.role"),
    ("op", "workbooks_change", "op", "text[]", "0", "t.op"),
    ("refused", "workbooks_refusal", "op", "text[]", "0", "t.op"),
    ("row", "workbooks_row", "rid", "bigint[]", "t.rid", "CAST(t.sheet AS TEXT) || ' ' || CAST(t.\"values\" AS TEXT)", " AND t.deleted_rev IS NULL"),
    ("col", "workbooks_column", "cid", "bigint[]", "t.cid", "CAST(t.sheet AS TEXT) || ' ' || CAST(t.slot AS TEXT)", " AND t.deleted_rev IS NULL"),
)


def read_batch(cursor, workbook_id: int, *, users, ops, rows, cols) -> None:
    """Asks for everything a batch of ``set`` operations needs to know, in one statement (each part
    tagged); ``Found.of`` reads the answer.

    On PostgreSQL each wanted key is looked up on its own (``LATERAL … LIMIT 1``), through the unique
    index on (workbook, key), whatever the planner believes: on a young table, before its statistics
    say how many changes one workbook has, it otherwise scans all of the workbook's change log for the
    batch's op ids (hundreds of entries a commit in the benchmarks, and growing).
    """
    parts, params = [], []
    for wanted, (tag, table, column, array_type, key, text, *live) in zip((users, ops, ops, rows, cols), _BATCH_READS, strict=True):
        if not wanted:
            continue
        live = "".join(live)
        if connection.vendor == "postgresql":
            parts.append(
                f"SELECT '{tag}', f.k, f.v FROM unnest(%b::{array_type}) AS w(k) CROSS JOIN LATERAL "  # noqa: S608 (constants)
                f"(SELECT {key} AS k, {text} AS v FROM {table} t WHERE t.workbook_id = %s AND t.{column} = w.k{live} LIMIT 1) AS f"
            )
            params += [list(wanted), workbook_id]
        else:
            parts.append(f"SELECT '{tag}', {key}, {text} FROM {table} t WHERE t.workbook_id = %s AND t.{column} IN ({placeholders(wanted)}){live}")  # noqa: S608
            params += [workbook_id, *wanted]
    # The workbook's sheets, all of them (at most a few hundred, tombstones included).
    if connection.vendor == "postgresql":
        sheet_text = "CAST(jsonb_build_array(t.name, t.position, t.deleted_rev IS NOT NULL) AS TEXT)"
    else:
        sheet_text = "json_array(t.name, t.position, json(CASE WHEN t.deleted_rev IS NULL THEN 'false' ELSE 'true' END))"
    parts.append(f"SELECT 'sheet', t.sid, {sheet_text} FROM workbooks_sheet t WHERE t.workbook_id = %s")  # noqa: S608 (constants)
    params.append(workbook_id)
    cursor.execute(" UNION ALL ".join(parts), params)


@contextlib.contextmanager
def batch_transaction():
    """commit_sets' transaction. Yields True when commit_sets is to send BEGIN and COMMIT itself, with
    its other statements: on PostgreSQL outside any transaction, where Django's would cost a round
    trip of its own for COMMIT. Whatever such a transaction has not committed when commit_sets ends
    (nothing to write, no such workbook, an error) is rolled back here. Elsewhere ``transaction.atomic``.

    psycopg's own errors (a pipeline reports its statements' errors when it ends, outside Django's
    cursor) come out as Django's, as the other database calls' do: a lost connection is an
    ``OperationalError`` (the consumers close the socket with 4503, and its client resends later), a
    refused statement another ``DatabaseError`` (WorkbookQueues commits the batch's operations one by
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


def pipeline():
    """PostgreSQL's pipeline mode: the statements inside go to the server together, one round trip
    for all of them (the server still runs them one after the other). Elsewhere, nothing."""
    if connection.vendor == "postgresql":
        return connection.connection.pipeline()
    return contextlib.nullcontext()


def write_batch(cursor, workbook_id: int, *, rows: dict[int, list], changes: list[Change], now: datetime, refusals=(), has_formulas=False) -> None:
    """The rows' new values, the change log's new entries (with the cells they wrote) and the workbook's
    revision (and that it has formulas), and the operations refused for good ((op, code, message,
    revision); see models.Refusal)."""
    if refusals:
        cursor.execute(
            "INSERT INTO workbooks_refusal (workbook_id, op, code, message, rev) VALUES "  # noqa: S608 (placeholders)
            + ", ".join(["(%s, %s, %s, %s, %s)"] * len(refusals)),
            [v for refusal in refusals for v in (workbook_id, *refusal)],
        )
    if not changes:
        return
    update_rows(cursor, workbook_id, rows)
    insert_cell_edits(cursor, workbook_id, changes)
    at = connection.ops.adapt_datetimefield_value(now)
    insert_changes(cursor, workbook_id, changes, at)
    formulas = ", has_formulas = %s" if has_formulas else ""
    cursor.execute(
        f"UPDATE workbooks_workbook SET rev = %s, updated_at = %s{formulas} WHERE id = %s",  # noqa: S608 (constants)
        [changes[-1].rev, at, *([True] if has_formulas else []), workbook_id],
    )


def insert_changes(cursor, workbook_id: int, changes: list[Change], at) -> None:
    """The change log's new entries (``at``: the time as the database takes it)."""
    entries = [
        (
            *(c.rev, c.op, c.by.id, c.by.name, c.kind, orjson.dumps(c.data).decode(), orjson.dumps(c.replaced).decode(), c.session, c.group),
            *(c.data.get("undo_of"), c.data.get("redo_of")),
        )
        for c in changes
    ]
    columns = 'workbook_id, rev, op, author_id, author_name, at, kind, data, replaced, session, "group", undo_of, redo_of'
    if connection.vendor == "postgresql":  # one array per column
        cursor.execute(
            f"INSERT INTO workbooks_change ({columns}) "  # noqa: S608 (names)
            "SELECT %s, e.rev, e.op, e.author_id, e.author_name, %s, e.kind, CAST(e.data AS jsonb), CAST(e.replaced AS jsonb), e.session, e.grp, "
            "e.undo_of, e.redo_of FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], "
            "%b::text[], %b::text[], %b::bigint[], %b::bigint[]) "
            "AS e(rev, op, author_id, author_name, kind, data, replaced, session, grp, undo_of, redo_of)",
            [workbook_id, at, *map(list, zip(*entries, strict=True))],
        )
    else:
        cursor.execute(
            f"INSERT INTO workbooks_change ({columns}) VALUES "  # noqa: S608 (placeholders)
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(entries)),
            [v for entry in entries for v in (workbook_id, *entry[:4], at, *entry[4:])],
        )


def put_cells(rows: dict[int, list], slots: dict[int, int], cells) -> list:
    """Writes each cell into its row's stored values (``rows``, by row id) at its column's slot
    (``slots``, by column id), extending a row that stops short of it (see models.Row); returns
    what each cell held, in order."""
    old = []
    for cell in cells:
        values, slot = rows[cell.row], slots[cell.col]
        if slot < len(values):
            old.append(values[slot])
            values[slot] = cell.value
        else:
            old.append(None)
            if cell.value is not None:
                values += [None] * (slot - len(values)) + [cell.value]
    return old


def put_slot(values: list, slot: int, value) -> None:
    """Puts one cell into a row's stored values, extending them when they stop short of it."""
    if slot < len(values):
        values[slot] = value
    elif value is not None:
        values += [None] * (slot - len(values)) + [value]


def patched_rows(workbook_id: int, cells: dict[tuple[int, int], object], *, rows: dict[int, list] | None = None) -> dict[int, list]:
    """Puts these cells (by row and column id) into their rows' stored values: those of ``rows`` (by row
    id), the others read from the database. Returns every row changed. Cells of rows or columns not
    live are left out."""
    rows = {} if rows is None else rows
    read = live_values(workbook_id, {r for r, _ in cells if r not in rows})
    slots, changed = live_slots(workbook_id, {c for _, c in cells}), {}
    for (rid, cid), value in cells.items():
        values = rows.get(rid, read.get(rid))
        if values is not None and cid in slots:
            put_slot(values, slots[cid], value)
            changed[rid] = values
    return changed


def is_formula_at(values: list, slot: int) -> bool:
    return slot < len(values) and type(values[slot]) is dict


def with_slots(workbook_id: int, values: dict[tuple[int, int], object]) -> list[tuple[int, int, object]]:
    """(row id, slot, value) of these formula cells' new values (by row and column id), those of live columns."""
    slots = live_slots(workbook_id, {cid for _, cid in values})
    return [(rid, slots[cid], value) for (rid, cid), value in values.items() if cid in slots]


def set_values(cursor, workbook_id: int, values: list[tuple[int, int, object]]) -> None:
    """Writes formula cells' new values (row id, slot, value) into their rows' stored form, in the
    database (``{"f", "v"}``: only ``v`` changes), without reading the rows: an edit that 100,000
    formulas depend on rewrites 100,000 values. A row's cells go in rounds, its first in the first."""
    rounds: list[list[tuple[int, int, str]]] = []
    seen: dict[int, int] = {}
    for rid, slot, value in values:
        n = seen[rid] = seen.get(rid, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((rid, slot, orjson.dumps(value).decode()))
    for cells in rounds:
        if connection.vendor == "postgresql":
            cursor.execute(
                'UPDATE workbooks_row SET "values" = jsonb_set(workbooks_row."values", ARRAY[CAST(u.slot AS TEXT), \'v\'], CAST(u.v AS jsonb)) '
                "FROM unnest(%b::bigint[], %b::int[], %b::text[]) AS u(rid, slot, v) "
                "WHERE workbooks_row.workbook_id = %s AND workbooks_row.rid = ANY(%b::bigint[]) AND workbooks_row.rid = u.rid",
                [*map(list, zip(*cells, strict=True)), workbook_id, [rid for rid, _, _ in cells]],
            )
            continue
        for start in range(0, len(cells), ROWS_PER_UPDATE):
            chunk = cells[start : start + ROWS_PER_UPDATE]
            cursor.execute(
                "UPDATE workbooks_row SET \"values\" = json_set(workbooks_row.\"values\", '$[' || v.column2 || '].v', json(v.column3)) "  # noqa: S608
                f"FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))}) AS v "
                "WHERE workbooks_row.workbook_id = %s AND workbooks_row.rid = v.column1",
                [*(x for cell in chunk for x in cell), workbook_id],
            )


def reshaped_since(workbook_id: int, rev: int) -> bool:
    """Whether any change after revision ``rev`` moved rows, columns or sheets (anything but a ``set``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM workbooks_change WHERE workbook_id = %s AND rev > %s AND kind <> 'set' LIMIT 1", [workbook_id, rev])
        return cursor.fetchone() is not None


EDITS_PER_INSERT = 5000  # six parameters each: SQLite takes at most 32,766


def insert_cell_edits(cursor, workbook_id: int, changes: list[Change]) -> None:
    """Records each cell the changes wrote, with what it replaced (see models.CellEdit)."""
    edits = [
        (row, col, c.rev, orjson.dumps(value).decode(), orjson.dumps(old).decode())
        for c in changes
        for row, col, value, old in history.cells_written(c.kind, c.data, c.replaced)
    ]
    if not edits:
        return
    if connection.vendor == "postgresql":
        cursor.execute(
            "INSERT INTO workbooks_celledit (workbook_id, row, col, rev, value, old) "
            "SELECT %s, e.row, e.col, e.rev, CAST(e.value AS jsonb), CAST(e.old AS jsonb) "
            "FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[]) AS e(row, col, rev, value, old)",
            [workbook_id, *map(list, zip(*edits, strict=True))],
        )
        return
    for start in range(0, len(edits), EDITS_PER_INSERT):
        chunk = edits[start : start + EDITS_PER_INSERT]
        cursor.execute(
            "INSERT INTO workbooks_celledit (workbook_id, row, col, rev, value, old) VALUES "  # noqa: S608 (placeholders)
            + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk)),
            [v for edit in chunk for v in (workbook_id, *edit)],
        )


def update_rows(cursor, workbook_id: int, rows: dict[int, list]) -> None:
    """Stores the rows' new values: on PostgreSQL in one statement, elsewhere one per ROWS_PER_UPDATE rows."""
    pairs = [(rid, orjson.dumps(values).decode()) for rid, values in rows.items()]
    if connection.vendor == "postgresql":
        if pairs:
            cursor.execute(
                'UPDATE workbooks_row SET "values" = CAST(v.vals AS jsonb) FROM unnest(%b::bigint[], %b::text[]) AS v(rid, vals) '
                # The rid test again, so the rows are found through (workbook, rid) rather than by reading
                # all of the workbook's rows, which the planner may think cheaper on a young table.
                "WHERE workbooks_row.workbook_id = %s AND workbooks_row.rid = ANY(%b::bigint[]) AND workbooks_row.rid = v.rid",
                [*map(list, zip(*pairs, strict=True)), workbook_id, list(rows)],
            )
        return
    for start in range(0, len(pairs), ROWS_PER_UPDATE):
        chunk = pairs[start : start + ROWS_PER_UPDATE]
        cursor.execute(
            f'UPDATE workbooks_row SET "values" = v.column2 FROM (VALUES {", ".join(["(%s, %s)"] * len(chunk))}) AS v '  # noqa: S608 (placeholders)
            "WHERE workbooks_row.workbook_id = %s AND workbooks_row.rid = v.column1",
            [*(x for pair in chunk for x in pair), workbook_id],
        )


class SetsTransaction:
    """commit_sets' transaction and its two cursors, one that writes and one that reads. On PostgreSQL
    the transaction's BEGIN, the lock and the batch's read go to the server in one round trip, and
    the writes and COMMIT in another."""

    def __enter__(self) -> SetsTransaction:
        self.stack = contextlib.ExitStack()
        self.explicit = self.stack.enter_context(batch_transaction())
        self.cursor = self.stack.enter_context(batch_cursor())
        self.reader = self.stack.enter_context(batch_cursor())
        return self

    def __exit__(self, *exc_info) -> bool | None:
        return self.stack.__exit__(*exc_info)

    def lock_and_read(self, workbook_id: int, *, users, ops, rows, cols) -> tuple[tuple[int, int, int, bool] | None, Found]:
        """Locks the workbook, then reads everything the batch needs: the workbook's (rev, rows_issued,
        cols_issued, has_formulas), None when there is no such workbook, and what ``Found`` holds."""
        # Row locks where the database has them; SQLite's IMMEDIATE transaction holds the database.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with pipeline():  # the reads run after the lock is granted, so they see what its last holder committed
            if self.explicit:
                self.cursor.execute("BEGIN")
            if connection.vendor == "postgresql":
                # The statements below are prepared (proj/settings.py). PostgreSQL may run a prepared
                # statement with one generic plan, made once for any parameters, and keeps to it once
                # the plans made for the actual parameters cost more on average. One made while the
                # tables were young (a new database, a new workbook) can read a workbook's whole change log
                # for each op id: one run of 1,000 edits a second fell into it (7,800 rows read per
                # edit, acknowledgements 37 s late). Here every run gets a plan for its parameters;
                # the statement is still not parsed again.
                self.cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            self.cursor.execute(f"SELECT rev, rows_issued, cols_issued, has_formulas FROM workbooks_workbook WHERE id = %s{lock}", [workbook_id])  # noqa: S608 (constants)
            read_batch(self.reader, workbook_id, users=users, ops=ops, rows=rows, cols=cols)
            locked = self.cursor.fetchone()
            found = Found.of(self.reader.fetchall())
        return locked, found

    def last_writes(self, workbook_id: int, *, since: int, latest: int) -> dict[tuple[int, int], LastWrite]:
        return last_writes(self.reader, workbook_id, since=since, latest=latest)

    def write_and_commit(
        self,
        workbook_id: int,
        *,
        rows: dict[int, list],
        values=(),
        changes: list[Change],
        now: datetime,
        refusals=(),
        has_formulas: bool = False,
    ) -> None:
        with pipeline():
            write_batch(self.cursor, workbook_id, rows=rows, changes=changes, now=now, refusals=refusals, has_formulas=has_formulas)
            set_values(self.cursor, workbook_id, values)
            if self.explicit:
                self.cursor.execute("COMMIT")


# What an undo reads, as plain statements: through the ORM the same reads cost it more time building
# queries than the database took answering them.


def earlier_outcome(workbook_id: int, op: str) -> int | OperationError | None:
    """What became of an operation id before: the revision of its change, its remembered refusal, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rev, '', '' FROM workbooks_change WHERE workbook_id = %s AND op = %s "
            "UNION ALL SELECT NULL, code, message FROM workbooks_refusal WHERE workbook_id = %s AND op = %s",
            [workbook_id, op, workbook_id, op],
        )
        found = cursor.fetchone()
    if found is None:
        return None
    rev, code, message = found
    return rev if rev is not None else ERRORS[code](message)


def _json(value):
    """A JSON column's value: PostgreSQL's driver decodes it, SQLite's gives the text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def session_entries(workbook_id: int, *, author_id: int, session: str, floor: int, below: int | None, limit: int) -> list[tuple]:
    """(rev, group, undo_of, redo_of) of the session's kept changes below revision ``below``, newest first."""
    before = "" if below is None else " AND rev < %s"
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT rev, "group", undo_of, redo_of FROM workbooks_change WHERE workbook_id = %s AND author_id = %s '  # noqa: S608 (no value)
            f"AND session = %s AND rev > %s{before} ORDER BY rev DESC LIMIT %s",
            [workbook_id, author_id, session, floor, *([] if below is None else [below]), limit],
        )
        return cursor.fetchall()


def logged(workbook_id: int, revs: list[int]) -> list[tuple[int, str, dict, dict]]:
    """(rev, kind, data, replaced) of the changes at these revisions, in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT rev, kind, data, replaced FROM workbooks_change WHERE workbook_id = %s AND rev IN ({placeholders(revs)}) ORDER BY rev",  # noqa: S608
            [workbook_id, *revs],
        )
        return [(rev, kind, _json(data), _json(replaced)) for rev, kind, data, replaced in cursor.fetchall()]


def others_wrote(workbook_id: int, *, after: int, author_id: int, session: str) -> bool:
    """Whether anyone but this user's session changed the workbook after revision ``after``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM workbooks_change WHERE workbook_id = %s AND rev > %s AND (author_id IS NULL OR author_id <> %s OR session <> %s) LIMIT 1",
            [workbook_id, after, author_id, session],
        )
        return cursor.fetchone() is not None


def sheet_states(workbook_id: int) -> dict[int, int | None]:
    """Each of the workbook's sheets (tombstones too): the revision that deleted it, or None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sid, deleted_rev FROM workbooks_sheet WHERE workbook_id = %s", [workbook_id])
        return dict(cursor.fetchall())


IDS_PER_SELECT = 5000  # SQLite takes at most 32,766 parameters


def _select_in(sql: str, workbook_id: int, ids) -> list[tuple]:
    """The rows of ``sql`` (with ``{ids}`` where the placeholders of an ``IN`` list go) for these ids,
    IDS_PER_SELECT at a time."""
    ids = issued(ids, MAX_ID)
    found = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), IDS_PER_SELECT):
            chunk = ids[start : start + IDS_PER_SELECT]
            cursor.execute(sql.format(ids=placeholders(chunk)), [workbook_id, *chunk])
            found += cursor.fetchall()
    return found


def line_states(workbook_id: int, *, rows: bool, ids) -> list[tuple[int, int | None, int]]:
    """(id, the revision that deleted it or None, its sheet) of the rows (or columns) with these ids."""
    table, key = ("workbooks_row", "rid") if rows else ("workbooks_column", "cid")
    return _select_in(f"SELECT {key}, deleted_rev, sheet FROM {table} WHERE workbook_id = %s AND {key} IN ({{ids}})", workbook_id, ids)  # noqa: S608


def live_slots(workbook_id: int, cols) -> dict[int, int]:
    """The slot of each of these columns that is live."""
    sql = "SELECT cid, slot FROM workbooks_column WHERE workbook_id = %s AND deleted_rev IS NULL AND cid IN ({ids})"
    return dict(_select_in(sql, workbook_id, cols))


def live_values(workbook_id: int, rows) -> dict[int, list]:
    """The stored cells of each of these rows that is live."""
    sql = 'SELECT rid, "values" FROM workbooks_row WHERE workbook_id = %s AND deleted_rev IS NULL AND rid IN ({ids})'
    return {rid: _json(values) for rid, values in _select_in(sql, workbook_id, rows)}
