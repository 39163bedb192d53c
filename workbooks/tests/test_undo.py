"""Undo and redo through the write path, on the database: each takes back exactly what one session
did, skips what others changed since, and is itself a change like any other."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from model_bakery import baker

from tests import support
from workbooks import past, protocol, selectors, services
from workbooks.domain.errors import Conflict, Forbidden, Invalid, NotFound
from workbooks.domain.grid import Grid
from workbooks.domain.values import CellWrite, DeleteCols, DeleteRows, InsertCols, InsertRows, Rename, Restore, SetCells, Undo
from workbooks.models import Change, Member

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(workbook_id):
    bob = baker.make(get_user_model(), username="bob")
    baker.make(Member, workbook_id=workbook_id, user=bob, role="editor")
    return bob


@pytest.fixture
def workbook_id(ada):
    """A workbook owned by ada with rows 1-3 and columns 1-2."""
    return services.create_workbook(user=ada, name="Budget", rows=3, cols=2).id


class Session:
    """One browser tab of one user: its operations carry its session id."""

    def __init__(self, workbook_id, user, session="tab"):
        self.workbook_id, self.user, self.session, self.count = workbook_id, user, session, 0

    def __call__(self, operation_type, *args, group=""):
        self.count += 1
        operation = operation_type(f"{self.user.username}-{self.session}-{self.count}", *args, session=self.session, group=group)
        return services.apply_operation(workbook_id=self.workbook_id, user=self.user, operation=operation).change

    def put(self, *cells, group=""):
        return self(SetCells, tuple(CellWrite(*c) for c in cells), None, group=group)

    def undo(self):
        return self(Undo, False)

    def redo(self):
        return self(Undo, True)


def values(workbook_id):
    return {row_id: list(vals) for row_id, vals in selectors.snapshot(workbook_id=workbook_id, role="owner").sheets[0].rows}


def replayed(workbook_id, start: dict) -> Grid:
    """A client's grid: the snapshot ``start`` with every change since applied as the wire sends it."""
    grid = Grid.from_snapshot(start)
    for change in selectors.changes_since(workbook_id=workbook_id, since=start["rev"]).changes:
        grid.apply(protocol.change(change))
    return grid


def snapshot_json(workbook_id):
    return protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))


class UndoTest:
    def test_undo_set_puts_old_values_back_redo_writes_them_again(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "a"))
        tab.put((1, 1, "b"), (2, 2, 5))
        start = snapshot_json(workbook_id)
        undone = tab.undo()
        cells = [{"row": 1, "col": 1, "value": "a"}, {"row": 2, "col": 2, "value": None}]
        assert (undone.kind, undone.data) == (
            "batch",
            {"steps": [{"kind": "set", "sheet": 1, "cells": cells, "overwritten": []}], "undo_of": 2, "skipped": []},
        )
        assert values(workbook_id)[1] == ["a", None] and values(workbook_id)[2] == [None, None]
        redone = tab.redo()
        assert redone.data["redo_of"] == 2
        assert values(workbook_id)[1] == ["b", None] and values(workbook_id)[2] == [None, 5]
        assert replayed(workbook_id, start).matches(snapshot_json(workbook_id))

    def test_undo_in_reverse_order_then_nothing_left_conflict(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "a"))
        tab.put((1, 1, "b"))
        tab.undo()
        assert values(workbook_id)[1][0] == "a"
        tab.undo()
        assert values(workbook_id)[1][0] is None
        rev = selectors.workbook_rev(workbook_id=workbook_id)
        with pytest.raises(Conflict):
            tab.undo()
        assert selectors.workbook_rev(workbook_id=workbook_id) == rev  # nothing changed

    def test_undo_takes_only_this_sessions_edits(self, ada, bob, workbook_id):
        mine, other_tab, bobs = Session(workbook_id, ada), Session(workbook_id, ada, "other tab"), Session(workbook_id, bob)
        mine.put((1, 1, "mine"))
        other_tab.put((2, 1, "my other tab"))
        bobs.put((3, 1, "bob"))
        mine.undo()
        assert values(workbook_id) == {1: [None, None], 2: ["my other tab", None], 3: ["bob", None]}
        with pytest.raises(Conflict):
            mine.undo()

    def test_undo_skips_cells_someone_else_changed_since(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine.put((1, 1, "a"), (1, 2, "b"))
        bobs.put((1, 2, "bob's"))
        undone = mine.undo()
        assert undone.data["skipped"] == [{"sheet": 1, "row": 1, "col": 2}]
        assert values(workbook_id)[1] == [None, "bob's"]

    def test_undo_skips_cells_written_by_a_user_deleted_since(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine.put((1, 1, "a"))
        bobs.put((1, 1, "bob's"))
        bob.delete()  # his changes stay in the log, with no author
        undone = mine.undo()
        assert undone.data["skipped"] == [{"sheet": 1, "row": 1, "col": 1}]
        assert values(workbook_id)[1] == ["bob's", None]

    def test_undo_whose_every_effect_is_skipped_still_commits_and_uses_the_step(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine.put((1, 1, "first"))
        mine.put((1, 1, "a"))
        bobs.put((1, 1, "bob's"))
        undone = mine.undo()
        assert undone.data["steps"] == [] and undone.data["skipped"] == [{"sheet": 1, "row": 1, "col": 1}]
        assert undone.rev == selectors.workbook_rev(workbook_id=workbook_id)
        mine.undo()  # the step before: also bob's cell now, skipped too
        assert values(workbook_id)[1][0] == "bob's"

    def test_undo_of_a_group_is_one_step(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "before"))
        tab.put((1, 1, "x"), group="replace")
        tab.put((2, 1, "y"), group="replace")
        tab.undo()
        assert values(workbook_id)[1][0] == "before" and values(workbook_id)[2][0] is None

    def test_new_edit_clears_redo(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "a"))
        tab.undo()
        tab.put((2, 1, "b"))
        with pytest.raises(Conflict):
            tab.redo()

    def test_undo_of_a_redo_and_redo_again(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "a"))
        tab.undo()
        tab.redo()
        tab.undo()
        assert values(workbook_id)[1][0] is None
        tab.redo()
        assert values(workbook_id)[1][0] == "a"

    def test_deleted_rows_come_back_in_place_with_ids_and_cells(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "one"), (2, 2, "two"), (3, 1, "three"))
        tab(InsertRows, None, 2)  # rows 4, 5
        start = snapshot_json(workbook_id)
        tab(DeleteRows, (2, 3, 5))
        undone = tab.undo()
        assert undone.data["steps"] == [
            {"kind": "insert_rows", "sheet": 1, "before": 4, "rows": [2, 3]},
            {"kind": "insert_rows", "sheet": 1, "before": None, "rows": [5]},
            {"kind": "set", "sheet": 1, "cells": [{"row": 2, "col": 2, "value": "two"}, {"row": 3, "col": 1, "value": "three"}], "overwritten": []},
        ]
        assert snapshot_json(workbook_id)["sheets"][0]["rows"] == start["sheets"][0]["rows"]
        assert replayed(workbook_id, start).matches(snapshot_json(workbook_id))
        tab.redo()
        assert list(values(workbook_id)) == [1, 4]

    def test_deleted_columns_come_back_with_their_cells(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "a"), (2, 1, True), (3, 2, 0))
        start = snapshot_json(workbook_id)
        tab(DeleteCols, (1,))
        tab.undo()
        assert (
            snapshot_json(workbook_id)["sheets"][0]["rows"] == start["sheets"][0]["rows"]
            and snapshot_json(workbook_id)["sheets"][0]["columns"] == start["sheets"][0]["columns"]
        )
        assert replayed(workbook_id, start).matches(snapshot_json(workbook_id))

    def test_undo_of_insert_keeps_rows_others_wrote_in(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine(InsertRows, 2, 2)  # rows 4, 5
        mine(InsertCols, None, 1)  # column 3
        bobs.put((5, 1, "bob's"))
        mine.undo()  # the column: nobody wrote in it
        undone = mine.undo()
        assert undone.data["skipped"] == [{"sheet": 1, "row": 5}]
        assert list(values(workbook_id)) == [1, 5, 2, 3]

    def test_undo_rename_unless_renamed_since_by_someone_else(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine(Rename, "Mine")
        mine.undo()
        assert selectors.workbook_name(workbook_id=workbook_id) == "Budget"
        mine.redo()
        bobs(Rename, "Bob's")
        assert mine.undo().data["skipped"] == [{"sheet": None}]
        assert selectors.workbook_name(workbook_id=workbook_id) == "Bob's"

    def test_undo_same_op_again_is_the_same_change(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, "a"))
        first = services.apply_operation(workbook_id=workbook_id, user=ada, operation=Undo("u", session="tab"))
        again = services.apply_operation(workbook_id=workbook_id, user=ada, operation=Undo("u", session="tab"))
        assert again.duplicate and again.change == first.change

    def test_a_refused_op_sent_again_is_refused_again_even_if_it_would_apply_now(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        redo = Undo("r", redo=True, session="tab")
        with pytest.raises(Conflict):
            services.apply_operation(workbook_id=workbook_id, user=ada, operation=redo)
        tab(DeleteRows, (2,))
        there = InsertRows("ins", 2, 1, session="tab")
        with pytest.raises(NotFound):
            services.apply_operation(workbook_id=workbook_id, user=ada, operation=there)
        tab.undo()  # row 2 is back, and there is something to redo: a client resending its ops
        with pytest.raises(Conflict):
            services.apply_operation(workbook_id=workbook_id, user=ada, operation=redo)
        with pytest.raises(NotFound):
            services.apply_operation(workbook_id=workbook_id, user=ada, operation=there)
        assert not Change.objects.filter(workbook_id=workbook_id, op__in=["r", "ins"]).exists()
        tab.redo()  # a new op id is a new operation

    def test_viewer_cannot_undo(self, workbook_id):
        viewer = baker.make(get_user_model())
        baker.make(Member, workbook_id=workbook_id, user=viewer, role="viewer")
        with pytest.raises(Forbidden):
            services.apply_operation(workbook_id=workbook_id, user=viewer, operation=Undo("u"))


# A deleted column's cells read back out of the rows by the database (JSON operators differ between
# PostgreSQL and SQLite), and a row's: run on each for real.
UNDO_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import past, protocol, selectors, services
from workbooks.domain.values import CellWrite, DeleteCols, DeleteRows, SetCells, Undo
from workbooks.models import Change

user = get_user_model().objects.create_user(username="u", password="unused-pw")
workbook_id = services.create_workbook(user=user, name="Undo", rows=3, cols=3).id
def apply(operation):
    return services.commit_operation(workbook_id=workbook_id, user=user, operation=operation).change
apply(SetCells("s", (CellWrite(1, 2, "text"), CellWrite(2, 2, 1.5), CellWrite(3, 2, False), CellWrite(3, 3, True), CellWrite(1, 1, None))))
before = protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))
apply(DeleteCols("dc", (2,)))
apply(DeleteRows("dr", (3,)))
undo_rows = apply(Undo("u1"))
undo_cols = apply(Undo("u2"))
after = protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))
redo = apply(Undo("r1", True))
undo_redo = apply(Undo("u3"))
resent = services.commit_operation(workbook_id=workbook_id, user=user, operation=Undo("u1"))
print(json.dumps({
    "before": before,
    "after": after,
    "steps": [undo_rows.data["steps"], undo_cols.data["steps"]],
    "redo": [redo.rev, redo.data["redo_of"], [s["kind"] for s in redo.data["steps"]]],
    "undo_redo": [undo_redo.rev, undo_redo.data["undo_of"]],
    "logged": list(Change.objects.filter(workbook_id=workbook_id, rev__gte=4).order_by("rev").values_list("rev", "undo_of", "redo_of")),
    "resent": [resent.duplicate, resent.change.rev],
    "end": protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner")),
}))
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_undo_brings_back_cells_of_deleted_rows_and_columns(database, request, tmp_path):
    result = support.scenario_result(database, request, tmp_path, UNDO_SCENARIO)
    assert {k: v for k, v in result["after"].items() if k != "rev"} == {k: v for k, v in result["before"].items() if k != "rev"}
    rows, cols = result["steps"]
    assert rows == [
        {"kind": "insert_rows", "sheet": 1, "before": None, "rows": [3]},
        {"kind": "set", "sheet": 1, "cells": [{"row": 3, "col": 3, "value": True}], "overwritten": []},
    ]
    assert cols == [
        {"kind": "insert_cols", "sheet": 1, "before": 3, "cols": [2]},
        {"kind": "set", "sheet": 1, "cells": [{"row": r, "col": 2, "value": v} for r, v in ((1, "text"), (2, 1.5), (3, False))], "overwritten": []},
    ]
    assert result["redo"] == [6, 2, ["delete_cols"]]  # the redo of the undo (rev 5) of the column delete (rev 2)
    assert result["undo_redo"] == [7, 6]
    assert result["logged"] == [[4, 3, None], [5, 2, None], [6, None, 2], [7, 6, None]]
    assert result["resent"] == [True, 4]
    assert {k: v for k, v in result["end"].items() if k != "rev"} == {k: v for k, v in result["after"].items() if k != "rev"}


class PastTest:
    def test_workbook_at_a_revision_is_what_a_client_saw_then(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        seen = {0: snapshot_json(workbook_id)}
        steps = [
            lambda: mine.put((1, 1, "a"), (2, 2, 1)),
            lambda: bobs(InsertRows, 2, 2),
            lambda: mine.put((4, 1, True), (1, 1, "b")),
            lambda: bobs(DeleteCols, (1,)),
            lambda: mine(Rename, "Renamed"),
            lambda: bobs(InsertCols, 2, 1),
            lambda: mine.put((1, 3, 0), (2, 2, None)),
            lambda: bobs(DeleteRows, (1, 4)),
            lambda: mine.undo(),
            lambda: mine.put((5, 2, "x")),
        ]
        for step in steps:
            change = step()
            seen[change.rev] = snapshot_json(workbook_id)
        for rev, expected in seen.items():
            assert protocol.snapshot(past.snapshot_at(workbook_id=workbook_id, rev=rev, role="owner")) == expected, rev

    def test_workbook_at_below_floor_410_above_latest_invalid(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        for i in range(3):
            tab.put((1, 1, i))
        call_command("prune_changes", keep=1, stdout=io.StringIO())
        with pytest.raises(selectors.HistoryTruncated):
            past.snapshot_at(workbook_id=workbook_id, rev=1, role="owner")
        assert past.snapshot_at(workbook_id=workbook_id, rev=2, role="owner").sheets[0].rows[0][1][0] == 1
        with pytest.raises(Invalid):
            past.snapshot_at(workbook_id=workbook_id, rev=4, role="owner")

    def test_cell_history_every_value_newest_first_with_author(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine.put((1, 1, "a"))
        bobs.put((1, 1, "b"), (2, 1, "other cell"))
        mine.undo()  # skipped: bob wrote the cell since; writes nothing there
        bobs.undo()  # puts "a" back
        found = past.cell_history(workbook_id=workbook_id, sheet=1, row=1, col=1)
        assert [(v.rev, v.by.name, v.value) for v in found] == [(4, "bob", "a"), (2, "bob", "b"), (1, "ada", "a")]
        assert [v.rev for v in past.cell_history(workbook_id=workbook_id, sheet=1, row=1, col=1, before=4, limit=1)] == [2]
        with pytest.raises(NotFound):
            past.cell_history(workbook_id=workbook_id, sheet=1, row=99, col=1)

    def test_versions_group_one_authors_consecutive_changes(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine.put((1, 1, "a"))
        mine(InsertRows, None, 1)
        bobs.put((1, 2, "b"))
        mine.put((2, 1, "c"))
        found = past.versions(workbook_id=workbook_id)
        assert [(v.rev, v.first_rev, v.by.name, v.kinds, v.count) for v in found] == [
            (4, 4, "ada", ("set",), 1),
            (3, 3, "bob", ("set",), 1),
            (2, 1, "ada", ("insert_rows", "set"), 2),
        ]
        assert [v.rev for v in past.versions(workbook_id=workbook_id, before=4, limit=1)] == [3]


class RestoreTest:
    def test_restore_makes_the_workbook_as_it_was_as_one_change_which_undo_takes_back(self, ada, bob, workbook_id):
        mine, bobs = Session(workbook_id, ada), Session(workbook_id, bob)
        mine.put((1, 1, "a"), (2, 2, True))
        then = snapshot_json(workbook_id)
        bobs(DeleteRows, (2,))
        bobs(InsertCols, 1, 1)
        bobs.put((1, 1, 1), (1, 3, "new"))
        bobs(Rename, "Bob's")
        before = snapshot_json(workbook_id)
        restored = mine(Restore, then["rev"])
        assert (restored.kind, restored.data["restore_of"]) == ("batch", then["rev"])
        assert {k: v for k, v in snapshot_json(workbook_id).items() if k != "rev"} == {k: v for k, v in then.items() if k != "rev"}
        assert replayed(workbook_id, before).matches(snapshot_json(workbook_id))
        mine.undo()
        assert {k: v for k, v in snapshot_json(workbook_id).items() if k != "rev"} == {k: v for k, v in before.items() if k != "rev"}

    def test_restore_below_floor_refused_nothing_changes(self, ada, workbook_id):
        tab = Session(workbook_id, ada)
        tab.put((1, 1, 1))
        tab.put((1, 1, 2))
        call_command("prune_changes", keep=1, stdout=io.StringIO())
        with pytest.raises(selectors.HistoryTruncated):
            tab(Restore, 0)
        assert selectors.workbook_rev(workbook_id=workbook_id) == 2
