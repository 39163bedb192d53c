"""Sheets (tabs) through the write path, on the database: added, duplicated, renamed, moved and
deleted as changes like any other, edits confined to their sheet, undo and restore of each, and the
workbook at a past revision with the sheets it had then."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from model_bakery import baker

from workbooks import past, protocol, selectors, services
from workbooks.domain.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from workbooks.domain.grid import Grid
from workbooks.domain.values import (
    AddSheet,
    CellWrite,
    DeleteRows,
    DeleteSheet,
    DuplicateSheet,
    InsertCols,
    MoveSheet,
    RenameSheet,
    Restore,
    SetCells,
    Undo,
)
from workbooks.models import Change, Member, Row, Sheet

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(workbook_id):
    bob = baker.make(get_user_model(), username="bob")
    baker.make(Member, workbook_id=workbook_id, user=bob, role="editor")
    return bob


@pytest.fixture
def workbook_id(ada):
    """A workbook owned by ada: Sheet1 (id 1) with rows 1-2 and columns 1-2."""
    return services.create_workbook(user=ada, name="Budget", rows=2, cols=2).id


class Tab:
    """One browser tab of one user."""

    def __init__(self, workbook_id, user, session="tab"):
        self.workbook_id, self.user, self.session, self.count = workbook_id, user, session, 0

    def __call__(self, operation_type, *args, **fields):
        self.count += 1
        operation = operation_type(f"{self.user.username}-{self.session}-{self.count}", *args, session=self.session, **fields)
        return services.apply_operation(workbook_id=self.workbook_id, user=self.user, operation=operation).change

    def put(self, sheet, *cells):
        return self(SetCells, tuple(CellWrite(*c) for c in cells), None, sheet=sheet)

    def undo(self):
        return self(Undo, False)

    def redo(self):
        return self(Undo, True)


def snapshot_json(workbook_id):
    return protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))


def tabs(workbook_id):
    return [(s["id"], s["name"]) for s in snapshot_json(workbook_id)["sheets"]]


def sheet_values(workbook_id, sid):
    (sheet,) = [s for s in snapshot_json(workbook_id)["sheets"] if s["id"] == sid]
    return [r["values"] for r in sheet["rows"]]


def replayed(workbook_id, start: dict) -> Grid:
    grid = Grid.from_snapshot(start)
    for change in selectors.changes_since(workbook_id=workbook_id, since=start["rev"]).changes:
        grid.apply(protocol.change(change))
    return grid


class AddSheetTest:
    def test_add_sheet_new_ids_at_the_end_or_before_one(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        added = tab(AddSheet, "Q3", None, 2, 1)
        assert (added.kind, added.data) == ("add_sheet", {"sheet": 2, "name": "Q3", "before": None, "columns": [3], "rows": [3, 4]})
        tab(AddSheet, "Q1", 1, 1, 1)
        assert tabs(workbook_id) == [(3, "Q1"), (1, "Sheet1"), (2, "Q3")]
        assert sheet_values(workbook_id, 2) == [[None], [None]]

    @pytest.mark.parametrize(("name", "error"), [("sheet1", Conflict), ("", Invalid), ("a" * 32, Invalid), ("a/b", Invalid), ("'q", Invalid)])
    def test_add_sheet_bad_or_taken_name_refused_nothing_changed(self, ada, workbook_id, name, error):
        with pytest.raises(error):
            Tab(workbook_id, ada)(AddSheet, name)
        assert tabs(workbook_id) == [(1, "Sheet1")] and not Change.objects.filter(workbook_id=workbook_id).exists()

    def test_add_sheet_past_the_sheet_limit_too_large(self, ada, workbook_id, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_sheets": 2}
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 1, 1)
        with pytest.raises(TooLarge):
            tab(AddSheet, "Three", None, 1, 1)

    def test_add_sheet_past_the_workbooks_cells_too_large(self, ada, workbook_id, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_cells": 10}
        with pytest.raises(TooLarge):
            Tab(workbook_id, ada)(AddSheet, "Big", None, 3, 3)  # 4 + 9 cells

    def test_viewer_cannot_add_a_sheet(self, ada, workbook_id):
        cy = baker.make(get_user_model(), username="cy")
        baker.make(Member, workbook_id=workbook_id, user=cy, role="viewer")
        with pytest.raises(Forbidden):
            Tab(workbook_id, cy)(AddSheet, "Mine")


class EditsInSheetsTest:
    def test_set_and_structure_changes_stay_in_their_sheet(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 2, 2)  # rows 3, 4; columns 3, 4
        tab.put(2, (3, 3, "x"))
        tab(InsertCols, None, 1, sheet=2)
        tab.put(1, (1, 1, "y"))
        assert sheet_values(workbook_id, 1) == [["y", None], [None, None]]
        assert sheet_values(workbook_id, 2) == [["x", None, None], [None, None, None]]

    def test_set_naming_a_cell_of_another_sheet_not_found(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 1, 1)  # row 3, column 3
        with pytest.raises(NotFound, match="not in sheet"):
            tab.put(1, (3, 3, "x"))
        with pytest.raises(NotFound, match="not in sheet"):
            tab(DeleteRows, (3,), sheet=1)

    def test_set_without_a_sheet_goes_to_the_first(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "First", 1, 1, 1)  # sheet 2, now the first tab: row 3, column 3
        assert tab(SetCells, (CellWrite(3, 3, "v1 page"),), None).data["sheet"] == 2

    def test_edit_of_a_deleted_sheet_refused_naming_it(self, ada, bob, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Q3", None, 1, 1)
        tab(DeleteSheet, 2)
        with pytest.raises(NotFound, match="“Q3” was deleted"):
            Tab(workbook_id, bob).put(2, (3, 3, "late"))
        with pytest.raises(NotFound, match="“Q3” was deleted"):
            Tab(workbook_id, bob)(InsertCols, None, 1, sheet=2)

    def test_edit_refused_for_a_deleted_sheet_is_refused_again_after_undo_brings_it_back(self, ada, bob, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Q3", None, 1, 1)
        tab(DeleteSheet, 2)
        late = SetCells("bob-late", (CellWrite(3, 3, "late"),), None, sheet=2)
        with pytest.raises(NotFound, match="“Q3” was deleted"):
            services.apply_operation(workbook_id=workbook_id, user=bob, operation=late)
        tab.undo()
        with pytest.raises(NotFound, match="“Q3” was deleted"):  # an op id is never both refused and applied
            services.apply_operation(workbook_id=workbook_id, user=bob, operation=late)
        assert sheet_values(workbook_id, 2) == [[None]]

    def test_unknown_sheet_not_found(self, ada, workbook_id):
        with pytest.raises(NotFound):
            Tab(workbook_id, ada).put(9, (1, 1, "x"))


class SheetOperationsTest:
    def test_rename_move_delete_and_the_last_sheet_stays(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 1, 1)
        assert tab(RenameSheet, 2, "Plan").data == {"sheet": 2, "name": "Plan"}
        with pytest.raises(Conflict):
            tab(RenameSheet, 1, "PLAN")
        assert tab(MoveSheet, 2, 1).data == {"sheet": 2, "before": 1}
        assert tabs(workbook_id) == [(2, "Plan"), (1, "Sheet1")]
        assert tab(DeleteSheet, 2).data == {"sheet": 2}
        with pytest.raises(Conflict, match="at least one sheet"):
            tab(DeleteSheet, 1)
        assert tabs(workbook_id) == [(1, "Sheet1")]

    def test_two_users_delete_the_same_sheet_second_refused_not_found(self, ada, bob, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 1, 1)
        tab(DeleteSheet, 2)
        with pytest.raises(NotFound, match="was deleted"):
            Tab(workbook_id, bob)(DeleteSheet, 2)

    def test_duplicate_copies_cells_into_new_ids_right_after_the_original(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put(1, (1, 1, "a"), (2, 2, 5))
        tab(InsertCols, 2, 1, sheet=1)  # column 3 between 1 and 2: slots out of order
        tab.put(1, (1, 3, True))
        tab(AddSheet, "Last", None, 1, 1)
        start = snapshot_json(workbook_id)
        copy = tab(DuplicateSheet, 1, "Sheet1 (copy)")
        assert copy.data == {"sheet": 3, "from": 1, "name": "Sheet1 (copy)", "before": 2, "columns": [5, 6, 7], "rows": [4, 5]}
        assert [name for _, name in tabs(workbook_id)] == ["Sheet1", "Sheet1 (copy)", "Last"]
        assert sheet_values(workbook_id, 3) == sheet_values(workbook_id, 1) == [["a", True, None], [None, None, 5]]
        tab.put(3, (4, 5, "changed"))
        assert sheet_values(workbook_id, 1)[0][0] == "a"
        assert replayed(workbook_id, start).matches(snapshot_json(workbook_id))


class SheetUndoTest:
    def test_deleted_sheet_comes_back_in_place_with_ids_and_cells(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 2, 1)
        tab(AddSheet, "Three", None, 1, 1)
        tab.put(2, (3, 3, "kept"))
        start = snapshot_json(workbook_id)
        tab(DeleteSheet, 2)
        undone = tab.undo()
        assert undone.data["steps"] == [
            {"kind": "add_sheet", "sheet": 2, "name": "Two", "before": 3, "columns": [3], "rows": [3, 4]},
            {"kind": "set", "sheet": 2, "cells": [{"row": 3, "col": 3, "value": "kept"}], "overwritten": []},
        ]
        assert snapshot_json(workbook_id)["sheets"] == start["sheets"]
        assert replayed(workbook_id, start).matches(snapshot_json(workbook_id))

    def test_revived_sheet_whose_name_was_taken_gets_a_number(self, ada, bob, workbook_id):
        mine = Tab(workbook_id, ada)
        mine(AddSheet, "Q3", None, 1, 1)
        mine(DeleteSheet, 2)
        Tab(workbook_id, bob)(AddSheet, "q3", None, 1, 1)
        mine.undo()
        assert [name for _, name in tabs(workbook_id)] == ["Sheet1", "Q3 (2)", "q3"]

    def test_undo_of_add_removes_it_unless_someone_wrote_in_it(self, ada, bob, workbook_id):
        mine = Tab(workbook_id, ada)
        mine(AddSheet, "Mine", None, 1, 1)
        mine.undo()
        assert tabs(workbook_id) == [(1, "Sheet1")]
        mine.redo()
        assert tabs(workbook_id) == [(1, "Sheet1"), (2, "Mine")]
        mine(AddSheet, "Shared", None, 1, 1)  # sheet 3: row 4, column 4
        Tab(workbook_id, bob).put(3, (4, 4, "bob's"))
        undone = mine.undo()
        assert (undone.data["steps"], undone.data["skipped"]) == ([], [{"sheet": 3}])
        assert (3, "Shared") in tabs(workbook_id)

    def test_rename_and_move_undone(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 1, 1)
        tab(RenameSheet, 1, "Data")
        tab(MoveSheet, 1, None)
        assert tabs(workbook_id) == [(2, "Two"), (1, "Data")]
        assert tab.undo().data["steps"] == [{"kind": "move_sheet", "sheet": 1, "before": 2}]
        assert tab.undo().data["steps"] == [{"kind": "rename_sheet", "sheet": 1, "name": "Sheet1"}]
        assert tabs(workbook_id) == [(1, "Sheet1"), (2, "Two")]

    def test_undo_of_an_edit_in_a_deleted_sheet_skipped(self, ada, bob, workbook_id):
        mine = Tab(workbook_id, ada)
        mine(AddSheet, "Two", None, 1, 1)
        mine.put(2, (3, 3, "x"))
        Tab(workbook_id, bob)(DeleteSheet, 2)
        undone = mine.undo()
        assert (undone.data["steps"], undone.data["skipped"]) == ([], [{"sheet": 2, "row": 3, "col": 3}])


class SheetsInThePastTest:
    def test_snapshot_at_every_revision_is_what_a_client_saw(self, ada, bob, workbook_id):
        mine, bobs = Tab(workbook_id, ada), Tab(workbook_id, bob)
        seen = {0: snapshot_json(workbook_id)}
        steps = [
            lambda: mine(AddSheet, "Two", None, 2, 2),
            lambda: bobs.put(2, (3, 3, "b")),
            lambda: mine(RenameSheet, 1, "Data"),
            lambda: mine(DuplicateSheet, 2, "Copy"),
            lambda: bobs(MoveSheet, 1, None),
            lambda: mine(DeleteSheet, 2),
            lambda: bobs.put(3, (5, 5, "c")),
            lambda: mine.undo(),
        ]
        for step in steps:
            change = step()
            seen[change.rev] = snapshot_json(workbook_id)
        for rev, then in seen.items():
            at = protocol.snapshot(past.snapshot_at(workbook_id=workbook_id, rev=rev, role="owner"))
            assert at == {**then, "rev": rev, "floor": at["floor"]}, rev

    def test_restore_brings_back_the_sheets_of_then(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Two", None, 1, 1)
        tab.put(2, (3, 3, "two"))
        then = snapshot_json(workbook_id)
        tab(RenameSheet, 2, "Renamed")
        tab(MoveSheet, 2, 1)
        tab(AddSheet, "Later", None, 1, 1)
        tab(DeleteSheet, 2)
        restored = tab(Restore, then["rev"])
        assert {k: v for k, v in snapshot_json(workbook_id).items() if k != "rev"} == {k: v for k, v in then.items() if k != "rev"}
        assert replayed(workbook_id, {**then, "rev": then["rev"]}).sheets.keys() == {1, 2}
        tab.undo()
        assert [name for _, name in tabs(workbook_id)] == ["Sheet1", "Later"]
        assert restored.data["restore_of"] == then["rev"]

    def test_prune_drops_sheets_deleted_below_the_floor_with_their_rows(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab(AddSheet, "Gone", None, 3, 1)
        tab(DeleteSheet, 2)
        tab.put(1, (1, 1, "x"))
        call_command("prune_changes", keep=1, stdout=io.StringIO())
        assert not Sheet.objects.filter(workbook_id=workbook_id, sid=2).exists()
        assert not Row.objects.filter(workbook_id=workbook_id, sheet=2).exists()
        assert tabs(workbook_id) == [(1, "Sheet1")]


class CreateWithSheetsTest:
    def test_create_workbook_with_named_sheets(self, ada):
        snap = services.create_workbook(user=ada, name="Plan", sheets=[{"name": "Jan", "rows": 2, "cols": 1}, {"name": "Feb"}], rows=3, cols=2)
        assert [(s.id, s.name, len(s.rows), len(s.columns)) for s in snap.sheets] == [(1, "Jan", 2, 1), (2, "Feb", 3, 2)]

    @pytest.mark.parametrize("sheets", [[], [{"name": "A"}, {"name": "a"}], [{"name": "x:y"}], "Sheet1", [{"rows": 1}]])
    def test_create_workbook_bad_sheets_refused_nothing_created(self, ada, sheets):
        with pytest.raises((Invalid, Conflict)):
            services.create_workbook(user=ada, name="Plan", sheets=sheets)
        assert not Member.objects.filter(user=ada).exists()
