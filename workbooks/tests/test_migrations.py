"""Migrations that change stored data, run forward and back on each database."""

from __future__ import annotations

import json

import pytest

from tests import support

# A sheet as 0001 stored it (cells keyed by column id; columns 7 then 5), converted by 0002 to cells
# in column order and back.
ROW_VALUES = """
import json
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

def models_at(migration):
    call_command("migrate", "sheet", migration, verbosity=0)
    state = MigrationExecutor(connection).loader.project_state(("sheet", migration))
    return state.apps.get_model("sheet", "Sheet"), state.apps.get_model("sheet", "Row")

Sheet, Row = models_at("0001_initial")
sheet = Sheet.objects.create(name="Old", rows_issued=3, cols_issued=7, row_count=3, col_count=2)
sheet.columns.create(cid=7, position=0)
sheet.columns.create(cid=5, position=1)
for rid, values in ((1, {"5": "b", "7": "a"}), (2, {"7": 1}), (3, {}), (4, {"5": None})):
    Row.objects.create(sheet=sheet, rid=rid, position=rid, values=values)
_, Row = models_at("0002_row_values_in_column_order")
forward = list(Row.objects.order_by("rid").values_list("values", flat=True))
_, Row = models_at("0001_initial")
back = list(Row.objects.order_by("rid").values_list("values", flat=True))
print(json.dumps({"forward": forward, "back": back}))
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_0002_row_values_become_cells_in_column_order_and_back(database, request, tmp_path):
    def check(database_url):
        env = support.app_env(database_url=database_url, var_dir=tmp_path)
        result = json.loads(support.run_python(env, ROW_VALUES))
        assert result["forward"] == [["a", "b"], [1], [], []]
        assert result["back"] == [{"7": "a", "5": "b"}, {"7": 1}, {}, {}]

    if database == "sqlite":
        check(f"sqlite:///{tmp_path / 'migrate.sqlite3'}")
    else:
        with request.getfixturevalue("postgres").database(prefix="tabula_migrate") as url:
            check(url)


# A sheet as 0003 stored it (cells in column order; columns 7 then 5), given slots, gapped positions
# and tombstones by 0004; then, with a deleted row and column and a column inserted on the left (its
# slot last), back to cells in column order.
SLOTS = """
import json
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

def models_at(migration):
    call_command("migrate", "sheet", migration, verbosity=0)
    state = MigrationExecutor(connection).loader.project_state(("sheet", migration))
    return (state.apps.get_model("sheet", name) for name in ("Sheet", "Row", "Column"))

Sheet, Row, Column = models_at("0003_sheet_id_indexes_covered_by_constraints")
sheet = Sheet.objects.create(name="Old", rows_issued=3, cols_issued=7, row_count=3, col_count=2)
Column.objects.create(sheet=sheet, cid=7, position=0)
Column.objects.create(sheet=sheet, cid=5, position=3)
for rid, position, values in ((1, 5, ["a", "b"]), (2, 0, [1]), (3, 9, [])):
    Row.objects.create(sheet=sheet, rid=rid, position=position, values=values)
Sheet, Row, Column = models_at("0005_column_slot_unique")
forward = {
    "columns": list(Column.objects.order_by("position").values_list("cid", "slot", "position")),
    "rows": list(Row.objects.order_by("position").values_list("rid", "position", "values")),
}
Column.objects.filter(cid=5).update(deleted_rev=1)
Column.objects.create(sheet_id=sheet.pk, cid=8, position=1, slot=2)
Row.objects.filter(rid=3).update(deleted_rev=1)
Row.objects.filter(rid=1).update(values=["a", "b", "new"])
Sheet, Row, Column = models_at("0003_sheet_id_indexes_covered_by_constraints")
back = {
    "columns": list(Column.objects.order_by("position").values_list("cid", "position")),
    "rows": list(Row.objects.order_by("position").values_list("rid", "position", "values")),
}
print(json.dumps({"forward": forward, "back": back}))
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_0004_columns_get_slots_positions_get_room_and_back(database, request, tmp_path):
    gap = 1 << 32

    def check(database_url):
        env = support.app_env(database_url=database_url, var_dir=tmp_path)
        result = json.loads(support.run_python(env, SLOTS))
        assert result["forward"] == {
            "columns": [[7, 0, gap], [5, 1, 2 * gap]],
            "rows": [[2, gap, [1]], [1, 2 * gap, ["a", "b"]], [3, 3 * gap, []]],
        }
        assert result["back"] == {"columns": [[8, 0], [7, 1]], "rows": [[2, 0, [None, 1]], [1, 1, ["new", "a"]]]}

    if database == "sqlite":
        check(f"sqlite:///{tmp_path / 'migrate.sqlite3'}")
    else:
        with request.getfixturevalue("postgres").database(prefix="tabula_migrate") as url:
            check(url)


# A v1 sheet at sheet/0010 (its id 2: the id counter past a deleted one), handed to workbooks: the
# same id, one sheet "Sheet1" with every row and column, its log, members, cell edits and refusals;
# then back to v1's tables.
TO_WORKBOOKS = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

def models_at(app, migration, *names):
    call_command("migrate", app, migration, verbosity=0)
    state = MigrationExecutor(connection).loader.project_state((app, migration))
    return [state.apps.get_model(app, name) for name in names]

call_command("migrate", "auth", verbosity=0)
Sheet, Member, Row, Column, Change, CellEdit, Refusal = models_at(
    "sheet", "0010_refusals", "Sheet", "Member", "Row", "Column", "Change", "CellEdit", "Refusal"
)
user = get_user_model().objects.create(username="ada")
Sheet.objects.create(name="Deleted").delete()
sheet = Sheet.objects.create(name="Old", rev=3, rows_issued=2, cols_issued=2, row_count=2, col_count=1, history_floor=1)
Member.objects.create(sheet=sheet, user_id=user.pk, role="owner")
Column.objects.create(sheet=sheet, cid=2, position=10, slot=0)
Column.objects.create(sheet=sheet, cid=1, position=20, slot=1, deleted_rev=3)
Row.objects.create(sheet=sheet, rid=1, position=10, values=["a", "gone"])
Row.objects.create(sheet=sheet, rid=2, position=20, values=[])
Change.objects.create(sheet=sheet, rev=2, op="o2", author_id=user.pk, author_name="ada", at="2026-01-01T00:00:00Z", kind="set",
                      data={"cells": [{"row": 1, "col": 2, "value": "a"}], "overwritten": []}, replaced={"values": [None]}, session="t")
CellEdit.objects.create(sheet=sheet, row=1, col=2, rev=2, value="a", old=None)
Refusal.objects.create(sheet=sheet, op="bad", code="conflict", message="nothing to undo", rev=2)
Workbook, WSheet, WRow, WColumn, WChange, WCellEdit, WRefusal, WMember = models_at(
    "workbooks", "0003_sheets", "Workbook", "Sheet", "Row", "Column", "Change", "CellEdit", "Refusal", "Member"
)
workbook = Workbook.objects.get()
after = {
    "workbook": [workbook.pk, workbook.name, workbook.rev, workbook.history_floor, workbook.sheets_issued, workbook.rows_issued],
    "sheets": list(WSheet.objects.values_list("workbook_id", "sid", "name", "row_count", "col_count", "deleted_rev")),
    "rows": list(WRow.objects.order_by("rid").values_list("rid", "sheet", "position", "values")),
    "columns": list(WColumn.objects.order_by("cid").values_list("cid", "sheet", "slot", "deleted_rev")),
    "changes": list(WChange.objects.values_list("rev", "op", "kind", "session", "author_id")),
    "edits": list(WCellEdit.objects.values_list("row", "col", "rev", "value")),
    "refusals": list(WRefusal.objects.values_list("op", "code")),
    "members": list(WMember.objects.values_list("workbook_id", "role")),
    "next_id": Workbook.objects.create(name="New").pk,
}
Workbook.objects.filter(name="New").delete()
Sheet, Row = models_at("sheet", "0010_refusals", "Sheet", "Row")
back = {"sheets": list(Sheet.objects.values_list("pk", "name", "row_count")), "rows": list(Row.objects.order_by("rid").values_list("rid", "values"))}
print(json.dumps({"after": after, "back": back}))
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_v1_sheets_become_workbooks_with_one_sheet_and_back(database, request, tmp_path):
    def check(database_url):
        env = support.app_env(database_url=database_url, var_dir=tmp_path)
        result = json.loads(support.run_python(env, TO_WORKBOOKS))
        after = result["after"]
        assert after["workbook"] == [2, "Old", 3, 1, 1, 2]
        assert after["sheets"] == [[2, 1, "Sheet1", 2, 1, None]]
        assert after["rows"] == [[1, 1, 10, ["a", "gone"]], [2, 1, 20, []]]
        assert after["columns"] == [[1, 1, 1, 3], [2, 1, 0, None]]
        assert after["changes"] == [[2, "o2", "set", "t", after["changes"][0][4]]]
        assert (after["edits"], after["refusals"], after["members"]) == ([[1, 2, 2, "a"]], [["bad", "conflict"]], [[2, "owner"]])
        assert after["next_id"] == 3  # ids are never issued twice
        assert result["back"] == {"sheets": [[2, "Old", 2]], "rows": [[1, ["a", "gone"]], [2, []]]}

    if database == "sqlite":
        check(f"sqlite:///{tmp_path / 'migrate.sqlite3'}")
    else:
        with request.getfixturevalue("postgres").database(prefix="tabula_migrate") as url:
            check(url)
