"""Every v1 sheet becomes a workbook with the same id: its members, rows, columns, change log, cell
edits and remembered refusals are copied over as they are (the next migration gives each workbook its
one sheet, ``Sheet1``), and ``sheet``'s last migration then drops v1's tables. Ids are copied, and
each table's id counter continues from v1's, so no id is ever issued twice.

Backwards, the rows go back to v1's tables (recreated empty by undoing ``sheet``'s last migration)."""

from django.db import migrations

# (v1 table, v2 table, the columns they share, v1's name for the workbook column, v2's)
TABLES = [
    ("sheet_sheet", "workbooks_workbook", ["id", "name", "rev", "rows_issued", "cols_issued", "row_count", "col_count", "history_floor", "created_at", "updated_at"]),
    ("sheet_member", "workbooks_member", ["id", "user_id", "role"]),
    ("sheet_row", "workbooks_row", ["id", "rid", "position", '"values"', "deleted_rev"]),
    ("sheet_column", "workbooks_column", ["id", "cid", "position", "slot", "deleted_rev"]),
    (
        "sheet_change",
        "workbooks_change",
        ["id", "rev", "op", "author_id", "author_name", "at", "kind", "data", "replaced", "session", '"group"', "undo_of", "redo_of"],
    ),
    ("sheet_celledit", "workbooks_celledit", ["row", "col", "rev", "value", "old"]),
    ("sheet_refusal", "workbooks_refusal", ["id", "op", "code", "message", "rev"]),
]
WITH_IDS = [(old, new) for old, new, columns in TABLES if "id" in columns]


def _copy(schema_editor, *, backwards: bool) -> None:
    cursor = schema_editor.connection.cursor()
    for old, new, columns in TABLES:
        source, target = (new, old) if backwards else (old, new)
        owner_from, owner_to = ("workbook_id", "sheet_id") if backwards else ("sheet_id", "workbook_id")
        if old != "sheet_sheet":
            columns = [*columns, owner_from]
        into = [owner_to if c == owner_from else c for c in columns]
        cursor.execute(f"INSERT INTO {target} ({', '.join(into)}) SELECT {', '.join(columns)} FROM {source}")  # noqa: S608 (constants)
    if backwards:  # forwards, sheet's next migration drops v1's tables
        for _, new, _ in reversed(TABLES):
            cursor.execute(f"DELETE FROM {new}")  # noqa: S608 (constants)
    for old, new in WITH_IDS:
        _continue_ids(schema_editor.connection, cursor, source=new if backwards else old, target=old if backwards else new)


def _continue_ids(connection, cursor, *, source: str, target: str) -> None:
    """Makes ``target``'s next id the one ``source`` would have issued next."""
    if connection.vendor == "postgresql":
        cursor.execute(f"SELECT last_value, is_called FROM {_sequence(cursor, source)}")  # noqa: S608 (a sequence's name)
        last, called = cursor.fetchone()
        cursor.execute("SELECT setval(%s, %s, %s)", [_sequence(cursor, target), last, called])
    elif connection.vendor == "sqlite":
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [source])
        found = cursor.fetchone()
        cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [target])
        if found:
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [target, found[0]])


def _sequence(cursor, table: str) -> str:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    return cursor.fetchone()[0]


def forwards(apps, schema_editor):
    _copy(schema_editor, backwards=False)


def backwards(apps, schema_editor):
    _copy(schema_editor, backwards=True)


class Migration(migrations.Migration):
    dependencies = [("workbooks", "0001_initial"), ("sheet", "0010_refusals")]

    operations = [migrations.RunPython(forwards, backwards)]
