"""The rules an operation meets against the workbook as it is: pure functions, no database."""

import pytest

from workbooks.domain.errors import NotFound, TooLarge
from workbooks.domain.rules import (
    PALETTE,
    applied_cells,
    applied_deletes,
    check_capacity,
    check_insert_anchor,
    check_known,
    column_title,
    user_color,
)
from workbooks.domain.values import CellWrite


class UserColorTest:
    def test_user_color_same_user_same_color_from_palette(self):
        assert user_color(7) == user_color(7)
        assert user_color(7) in PALETTE

    def test_user_color_consecutive_users_different_colors(self):
        assert len({user_color(i) for i in range(len(PALETTE))}) == len(PALETTE)


class ColumnTitleTest:
    @pytest.mark.parametrize(
        ("position", "title"),
        [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB"), (51, "AZ"), (52, "BA"), (701, "ZZ"), (702, "AAA")],
    )
    def test_column_title_position_gives_spreadsheet_letters(self, position, title):
        assert column_title(position) == title


class CheckKnownTest:
    def test_check_known_ids_within_issued_accepted(self):
        check_known([1, 5, 10], 10, "row")

    @pytest.mark.parametrize("unknown", [0, -1, 11])
    def test_check_known_id_never_issued_not_found(self, unknown):
        with pytest.raises(NotFound, match=f"unknown row id {unknown}"):
            check_known([1, unknown], 10, "row")


class AppliedCellsTest:
    def apply(self, cells, *, live_rows=(1, 2, 3), live_cols=(1, 2), rows_issued=3, cols_issued=2):
        return applied_cells(cells, live_rows=set(live_rows), live_cols=set(live_cols), rows_issued=rows_issued, cols_issued=cols_issued)

    def test_applied_cells_all_live_all_land_in_order(self):
        cells = [CellWrite(2, 1, "x"), CellWrite(1, 2, 3), CellWrite(3, 1, None)]
        assert self.apply(cells) == tuple(cells)

    def test_applied_cells_row_deleted_meanwhile_cell_dropped(self):
        cells = [CellWrite(2, 1, "gone"), CellWrite(1, 1, "kept")]
        assert self.apply(cells, live_rows=(1, 3)) == (CellWrite(1, 1, "kept"),)

    def test_applied_cells_column_deleted_meanwhile_cell_dropped(self):
        cells = [CellWrite(1, 2, "gone"), CellWrite(1, 1, "kept")]
        assert self.apply(cells, live_cols=(1,)) == (CellWrite(1, 1, "kept"),)

    def test_applied_cells_unknown_row_refuses_whole_set(self):
        with pytest.raises(NotFound, match="row"):
            self.apply([CellWrite(1, 1, "a"), CellWrite(4, 1, "b")])

    def test_applied_cells_unknown_column_refuses_whole_set(self):
        with pytest.raises(NotFound, match="column"):
            self.apply([CellWrite(1, 1, "a"), CellWrite(1, 3, "b")])

    def test_applied_cells_same_cell_twice_last_value_at_first_place(self):
        cells = [CellWrite(1, 1, "first"), CellWrite(2, 2, "other"), CellWrite(1, 1, "last")]
        assert self.apply(cells) == (CellWrite(1, 1, "last"), CellWrite(2, 2, "other"))


class AppliedDeletesTest:
    def test_applied_deletes_live_ids_all_removed(self):
        assert applied_deletes([3, 1], live={1, 2, 3}, issued=3, what="row") == (3, 1)

    def test_applied_deletes_already_deleted_dropped(self):
        assert applied_deletes([1, 2], live={2}, issued=3, what="row") == (2,)

    def test_applied_deletes_repeated_id_once(self):
        assert applied_deletes([2, 2, 1, 2], live={1, 2}, issued=2, what="column") == (2, 1)

    def test_applied_deletes_unknown_id_not_found(self):
        with pytest.raises(NotFound, match="unknown column id 9"):
            applied_deletes([1, 9], live={1}, issued=3, what="column")


class CheckInsertAnchorTest:
    def test_check_insert_anchor_none_means_end_accepted(self):
        check_insert_anchor(None, live=set(), issued=0, what="row")

    def test_check_insert_anchor_live_id_accepted(self):
        check_insert_anchor(2, live={2}, issued=3, what="row")

    def test_check_insert_anchor_deleted_id_not_found(self):
        with pytest.raises(NotFound, match="was deleted"):
            check_insert_anchor(2, live=set(), issued=3, what="row")

    def test_check_insert_anchor_never_issued_not_found(self):
        with pytest.raises(NotFound, match="unknown row id 4"):
            check_insert_anchor(4, live={1, 2, 3}, issued=3, what="row")


class CheckCapacityTest:
    def test_check_capacity_up_to_limit_accepted(self):
        check_capacity(8, 2, 10, "rows")

    def test_check_capacity_beyond_limit_too_large(self):
        with pytest.raises(TooLarge, match="at most 10 rows"):
            check_capacity(8, 3, 10, "rows")
