"""The in-memory grid clients keep: built from a snapshot, changed by changes in rev order."""

import pytest

from workbooks.domain.grid import Grid


def snapshot(rev=0, cols=(1, 2), rows=((1, ["a", None]), (2, [None, 2]))):
    return {
        "id": 1,
        "name": "s",
        "rev": rev,
        "floor": 0,
        "role": "owner",
        "sheets": [
            {"id": 1, "name": "Sheet1", "columns": [{"id": c, "title": "?"} for c in cols], "rows": [{"id": r, "values": list(v)} for r, v in rows]}
        ],
    }


def change(rev, kind, **fields):
    if kind in ("set", "insert_rows", "insert_cols", "delete_rows", "delete_cols"):
        fields.setdefault("sheet", 1)
    return {"type": "change", "rev": rev, "op": f"op{rev}", "by": {"id": 1, "name": "ada"}, "at": "2025-01-01T00:00:00Z", "kind": kind, **fields}


class GridTest:
    def test_from_snapshot_values_in_column_order(self):
        grid = Grid.from_snapshot(snapshot())
        assert grid.rev == 0
        assert grid.values() == [["a", None], [None, 2]]
        assert grid.matches(snapshot())

    def test_from_snapshot_row_with_wrong_width_refused(self):
        with pytest.raises(ValueError):
            Grid.from_snapshot(snapshot(rows=((1, ["a"]),)))

    def test_apply_set_writes_and_null_clears(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "set", cells=[{"row": 1, "col": 1, "value": None}, {"row": 2, "col": 1, "value": True}]))
        assert grid.rev == 1
        assert grid.values() == [[None, None], [True, 2]]

    def test_apply_insert_rows_before_id_and_at_end(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "insert_rows", before=2, rows=[3, 4]))
        grid.apply(change(2, "insert_rows", before=None, rows=[5]))
        assert grid.rows == [1, 3, 4, 2, 5]
        assert grid.values() == [["a", None], [None, None], [None, None], [None, 2], [None, None]]

    def test_apply_insert_cols_before_id_shifts_values(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "insert_cols", before=1, cols=[3]))
        assert grid.cols == [3, 1, 2]
        assert grid.values() == [[None, "a", None], [None, None, 2]]

    def test_apply_delete_rows_removes_row_and_cells(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "delete_rows", rows=[1]))
        assert grid.rows == [2]
        assert grid.cells == {(2, 2): 2}

    def test_apply_delete_cols_removes_column_and_cells(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "delete_cols", cols=[2]))
        assert grid.cols == [1]
        assert grid.values() == [["a"], [None]]

    def test_apply_rename_only_advances_rev(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "rename", name="new"))
        assert grid.rev == 1
        assert grid.values() == [["a", None], [None, 2]]

    @pytest.mark.parametrize("rev", [0, 2, 5])
    def test_apply_out_of_order_rev_refused_and_grid_unchanged(self, rev):
        grid = Grid.from_snapshot(snapshot())
        with pytest.raises(ValueError, match="does not follow"):
            grid.apply(change(rev, "set", cells=[{"row": 1, "col": 1, "value": "x"}]))
        assert grid.rev == 0
        assert grid.values() == [["a", None], [None, 2]]

    def test_matches_after_changes_equals_server_snapshot(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "insert_cols", before=None, cols=[3]))
        grid.apply(change(2, "set", cells=[{"row": 2, "col": 3, "value": "z"}]))
        later = snapshot(rev=2, cols=(1, 2, 3), rows=((1, ["a", None, None]), (2, [None, 2, "z"])))
        assert grid.matches(later)

    def test_matches_different_rev_or_order_or_values_false(self):
        grid = Grid.from_snapshot(snapshot())
        assert not grid.matches(snapshot(rev=1))
        assert not grid.matches(snapshot(cols=(2, 1), rows=((1, [None, "a"]), (2, [2, None]))))
        assert not grid.matches(snapshot(rows=((1, ["b", None]), (2, [None, 2]))))


class GridSheetsTest:
    def test_add_sheet_goes_before_the_sheet_named_and_takes_changes(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "add_sheet", sheet=2, name="Q3", before=1, columns=[3], rows=[4]))
        grid.apply(change(2, "set", sheet=2, cells=[{"row": 4, "col": 3, "value": "x"}]))
        assert grid.order == [2, 1]
        assert grid.values(2) == [["x"]] and grid.values(1) == [["a", None], [None, 2]]

    def test_duplicate_sheet_copies_the_originals_cells_positionally(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "duplicate_sheet", sheet=2, **{"from": 1}, name="Copy", before=None, columns=[5, 6], rows=[7, 8]))
        assert grid.order == [1, 2] and grid.values(2) == [["a", None], [None, 2]]

    def test_rename_move_delete_sheet(self):
        grid = Grid.from_snapshot(snapshot())
        grid.apply(change(1, "add_sheet", sheet=2, name="Q3", before=None, columns=[3], rows=[4]))
        grid.apply(change(2, "rename_sheet", sheet=2, name="Q4"))
        grid.apply(change(3, "move_sheet", sheet=2, before=1))
        assert grid.order == [2, 1] and grid.sheets[2].name == "Q4"
        grid.apply(change(4, "delete_sheet", sheet=1))
        assert grid.order == [2] and grid.cells == {}

    def test_matches_compares_sheet_order_and_names(self):
        grid = Grid.from_snapshot(snapshot())
        renamed = snapshot()
        renamed["sheets"][0]["name"] = "Other"
        assert grid.matches(snapshot()) and not grid.matches(renamed)
