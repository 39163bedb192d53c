"""Undo's rules without a database: which changes a session's undo or redo takes, and how each step
is taken back without touching what others did since."""

from workbooks.domain.history import Entry, Plan, Since, State, Step, Structure, invert, next_step, steps_of
from workbooks.domain.values import CellWrite


def edits(*revs, group=""):
    return [Entry(rev, group) for rev in revs]


def next_of(history, *, redo):
    """next_step of a session's changes, given in the order they were made."""
    return next_step(reversed(history), redo=redo)


class NextStepTest:
    def test_nothing_done_nothing_to_undo_or_redo(self):
        assert next_of([], redo=False) == [] and next_of([], redo=True) == []

    def test_undo_takes_the_latest_edit_then_the_one_before(self):
        assert next_of(edits(1, 2), redo=False) == [2]
        assert next_of([*edits(1, 2), Entry(3, undo_of=2)], redo=False) == [1]

    def test_redo_takes_the_latest_undo(self):
        history = [*edits(1, 2), Entry(3, undo_of=2), Entry(4, undo_of=1)]
        assert next_of(history, redo=True) == [4]
        assert next_of([*history, Entry(5, redo_of=1)], redo=True) == [3]

    def test_undo_after_redo_takes_the_redo_back(self):
        assert next_of([*edits(1), Entry(2, undo_of=1), Entry(3, redo_of=1)], redo=False) == [3]

    def test_a_new_edit_empties_the_redo_list(self):
        assert next_of([*edits(1), Entry(2, undo_of=1), *edits(3)], redo=True) == []

    def test_consecutive_edits_of_one_group_are_one_step(self):
        history = [*edits(1), *edits(2, 3, group="g"), *edits(4, group="h")]
        assert next_of(history, redo=False) == [4]
        assert next_of([*history, Entry(5, undo_of=4)], redo=False) == [2, 3]

    def test_same_group_apart_is_two_steps(self):
        assert next_of([*edits(1, group="g"), *edits(2), *edits(3, group="g")], redo=False) == [3]
        assert next_of([*edits(1, group="g"), *edits(2), Entry(3, undo_of=2), *edits(4, group="g")], redo=False) == [4]

    def test_long_mixed_history_as_replayed_forwards(self):
        history = [*edits(1), *edits(2, 3, group="p"), Entry(4, undo_of=3), Entry(5, redo_of=3), *edits(6)]
        history += [Entry(7, undo_of=6), Entry(8, undo_of=5), Entry(9, redo_of=5)]
        assert next_of(history, redo=False) == [9]  # then the redo of 5 is undone
        assert next_of(history, redo=True) == [7]  # the undo of 6 is the redo list's last step
        history += [Entry(10, undo_of=9), Entry(11, undo_of=1)]
        assert next_of(history, redo=False) == []
        assert next_of(history, redo=True) == [11]

    def test_reads_only_as_far_back_as_it_needs(self):
        read = []

        def newest_first():
            for entry in reversed(edits(*range(1, 1001))):
                read.append(entry.rev)
                yield entry

        assert next_step(newest_first(), redo=False) == [1000]
        assert len(read) <= 2


def set_step(*cells, old):
    return Step("set", {"sheet": 7, "cells": [{"row": r, "col": c, "value": v} for r, c, v in cells], "overwritten": []}, {"values": list(old)})


LIVE = State(
    live_rows=frozenset({1, 2}),
    live_cols=frozenset({1, 2}),
    dead_rows=frozenset({9}),
    dead_cols=frozenset({8}),
    live_sheets=frozenset({7, 3}),
    dead_sheets=frozenset({4}),
)


class InvertTest:
    def test_set_back_to_old_values(self):
        plan, skipped = invert(set_step((1, 1, "new"), (2, 2, None), old=["old", 5]), LIVE, Since())
        assert plan == Plan("set", cells=(CellWrite(1, 1, "old"), CellWrite(2, 2, 5)), sheet=7)
        assert skipped == []

    def test_set_skips_cells_others_wrote_and_cells_of_deleted_rows(self):
        step = set_step((1, 1, "a"), (1, 2, "b"), (9, 1, "c"), old=[None, None, None])
        plan, skipped = invert(step, LIVE, Since(cells={(1, 2)}))
        assert plan == Plan("set", cells=(CellWrite(1, 1, None),), sheet=7)
        assert skipped == [{"sheet": 7, "row": 1, "col": 2}, {"sheet": 7, "row": 9, "col": 1}]

    def test_set_logged_without_old_values_is_skipped(self):
        step = Step("set", {"sheet": 7, "cells": [{"row": 1, "col": 1, "value": "a"}]}, {})
        assert invert(step, LIVE, Since()) == (None, [{"sheet": 7, "row": 1, "col": 1}])

    def test_cells_restored_with_their_rows_need_no_step_of_their_own(self):
        step = Step("set", {"cells": [{"row": 1, "col": 1, "value": "a"}]}, {"restored": True})
        assert invert(step, LIVE, Since()) == (None, [])

    def test_insert_deletes_the_new_rows_except_those_others_wrote_in(self):
        plan, skipped = invert(Step("insert_rows", {"sheet": 7, "before": None, "rows": [1, 2, 9]}, {}), LIVE, Since(cells={(2, 1)}))
        assert plan == Plan("delete_rows", ids=(1,), sheet=7)
        assert skipped == [{"sheet": 7, "row": 2}]

    def test_delete_brings_back_what_is_still_deleted(self):
        plan, skipped = invert(Step("delete_cols", {"sheet": 7, "cols": [8, 1]}, {}), LIVE, Since())
        assert plan == Plan("revive_cols", ids=(8,), sheet=7)
        assert skipped == [{"sheet": 7, "col": 1}]

    def test_rename_back_unless_renamed_since(self):
        step = Step("rename", {"name": "New"}, {"name": "Old"})
        assert invert(step, LIVE, Since()) == (Plan("rename", name="Old"), [])
        assert invert(step, LIVE, Since(renamed=True)) == (None, [{"sheet": None}])

    def test_step_logged_before_sheets_is_on_the_first_sheet(self):
        plan, _ = invert(Step("delete_rows", {"rows": [9]}, {}), LIVE, Since())
        assert plan == Plan("revive_rows", ids=(9,), sheet=1)

    def test_added_sheet_deleted_unless_others_worked_in_it_or_it_is_the_last(self):
        step = Step("add_sheet", {"sheet": 3, "name": "Q3", "before": None, "columns": [], "rows": []}, {})
        assert invert(step, LIVE, Since()) == (Plan("delete_sheet", sheet=3), [])
        assert invert(step, LIVE, Since(sheets={3})) == (None, [{"sheet": 3}])
        assert invert(step, State(live_sheets=frozenset({3}), written_sheets=frozenset()), Since()) == (None, [{"sheet": 3}])
        assert invert(step, State(live_sheets=frozenset({3, 7}), written_sheets=frozenset({3})), Since()) == (None, [{"sheet": 3}])

    def test_deleted_sheet_revived_while_it_is_a_tombstone(self):
        assert invert(Step("delete_sheet", {"sheet": 4}, {"name": "Old", "position": 5}), LIVE, Since()) == (Plan("revive_sheet", sheet=4), [])
        assert invert(Step("delete_sheet", {"sheet": 3}, {"name": "Old", "position": 5}), LIVE, Since()) == (None, [{"sheet": 3}])

    def test_sheet_renamed_and_moved_back_unless_others_did_since(self):
        rename = Step("rename_sheet", {"sheet": 3, "name": "New"}, {"name": "Old"})
        move = Step("move_sheet", {"sheet": 3, "before": 7}, {"position": 9, "before": None})
        assert invert(rename, LIVE, Since()) == (Plan("rename_sheet", sheet=3, name="Old"), [])
        assert invert(rename, LIVE, Since(renamed_sheets={3})) == (None, [{"sheet": 3}])
        assert invert(move, LIVE, Since()) == (Plan("move_sheet", sheet=3, position=9), [])
        assert invert(move, LIVE, Since(moved_sheets={3})) == (None, [{"sheet": 3}])


class StructureTest:
    def test_rewind_brings_back_sheets_as_they_were(self):
        structure = Structure(rows=set(), cols=set(), name="W", sheets={1: ("Now", 10), 2: ("Added", 20)})
        structure.rewind([Step("add_sheet", {"sheet": 2}, {})])
        structure.rewind([Step("move_sheet", {"sheet": 1, "before": None}, {"position": 5, "before": 3})])
        structure.rewind([Step("rename_sheet", {"sheet": 1, "name": "Now"}, {"name": "Then"})])
        structure.rewind([Step("delete_sheet", {"sheet": 3}, {"name": "Gone", "position": 7})])
        assert structure.sheets == {1: ("Then", 5), 3: ("Gone", 7)}


class StepsOfTest:
    def test_a_change_is_one_step_a_batch_its_steps_with_what_each_replaced(self):
        assert steps_of("rename", {"name": "N"}, {"name": "O"}) == [Step("rename", {"name": "N"}, {"name": "O"})]
        batch = {"steps": [{"kind": "delete_rows", "rows": [1]}, {"kind": "rename", "name": "N"}], "undo_of": 3, "skipped": []}
        assert steps_of("batch", batch, {"steps": [{}, {"name": "O"}]}) == [
            Step("delete_rows", {"rows": [1]}, {}),
            Step("rename", {"name": "N"}, {"name": "O"}),
        ]

    def test_since_collects_others_cells_and_renames(self):
        since = Since()
        since.add([set_step((1, 2, "x"), old=[None]), Step("rename", {"name": "N"}, {})])
        assert (since.cells, since.rows, since.cols, since.renamed) == ({(1, 2)}, {1}, {2}, True)
