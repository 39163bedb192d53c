"""Undo's rules without a database: which changes a session's undo or redo takes, and how each step
is taken back without touching what others did since."""

from workbooks.domain.history import Entry, Plan, Since, State, Step, invert, next_step, steps_of
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
    return Step("set", {"cells": [{"row": r, "col": c, "value": v} for r, c, v in cells], "overwritten": []}, {"values": list(old)})


LIVE = State(live_rows=frozenset({1, 2}), live_cols=frozenset({1, 2}), dead_rows=frozenset({9}), dead_cols=frozenset({8}))


class InvertTest:
    def test_set_back_to_old_values(self):
        plan, skipped = invert(set_step((1, 1, "new"), (2, 2, None), old=["old", 5]), LIVE, Since(), 7)
        assert plan == Plan("set", cells=(CellWrite(1, 1, "old"), CellWrite(2, 2, 5)))
        assert skipped == []

    def test_set_skips_cells_others_wrote_and_cells_of_deleted_rows(self):
        step = set_step((1, 1, "a"), (1, 2, "b"), (9, 1, "c"), old=[None, None, None])
        plan, skipped = invert(step, LIVE, Since(cells={(1, 2)}), 7)
        assert plan == Plan("set", cells=(CellWrite(1, 1, None),))
        assert skipped == [{"workbook": 7, "row": 1, "col": 2}, {"workbook": 7, "row": 9, "col": 1}]

    def test_set_logged_without_old_values_is_skipped(self):
        step = Step("set", {"cells": [{"row": 1, "col": 1, "value": "a"}]}, {})
        assert invert(step, LIVE, Since(), 7) == (None, [{"workbook": 7, "row": 1, "col": 1}])

    def test_cells_restored_with_their_rows_need_no_step_of_their_own(self):
        step = Step("set", {"cells": [{"row": 1, "col": 1, "value": "a"}]}, {"restored": True})
        assert invert(step, LIVE, Since(), 7) == (None, [])

    def test_insert_deletes_the_new_rows_except_those_others_wrote_in(self):
        plan, skipped = invert(Step("insert_rows", {"before": None, "rows": [1, 2, 9]}, {}), LIVE, Since(cells={(2, 1)}), 7)
        assert plan == Plan("delete_rows", ids=(1,))
        assert skipped == [{"workbook": 7, "row": 2}]

    def test_delete_brings_back_what_is_still_deleted(self):
        plan, skipped = invert(Step("delete_cols", {"cols": [8, 1]}, {}), LIVE, Since(), 7)
        assert plan == Plan("revive_cols", ids=(8,))
        assert skipped == [{"workbook": 7, "col": 1}]

    def test_rename_back_unless_renamed_since(self):
        step = Step("rename", {"name": "New"}, {"name": "Old"})
        assert invert(step, LIVE, Since(), 7) == (Plan("rename", name="Old"), [])
        assert invert(step, LIVE, Since(renamed=True), 7) == (None, [{"workbook": 7}])


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
