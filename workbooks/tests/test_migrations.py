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
