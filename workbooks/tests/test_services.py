"""The write path against the database: apply an operation, workbooks and their members, broadcast after commit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.db import OperationalError
from model_bakery import baker

from tests import support
from workbooks import broadcast, protocol, selectors, services
from workbooks.domain.errors import Forbidden, Invalid, NotFound, OperationError, TooLarge
from workbooks.domain.values import CellWrite, DeleteCols, DeleteRows, InsertCols, InsertRows, Rename, SetCells
from workbooks.models import Change, Column, Member, Row, Sheet, Workbook
from workbooks.services import batching, positions, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def workbook_id(ada):
    """A workbook owned by ada with rows 1-3 and columns 1-2."""
    return services.create_workbook(user=ada, name="Budget", rows=3, cols=2).id


def user_with_role(workbook_id, role, username=None):
    user = baker.make(get_user_model(), **({"username": username} if username else {}))
    baker.make(Member, workbook_id=workbook_id, user=user, role=role)
    return user


def values(workbook_id):
    """The workbook as {row id: [values in column order]}, read through the selector."""
    return {row_id: list(vals) for row_id, vals in selectors.snapshot(workbook_id=workbook_id, role="owner").sheets[0].rows}


def order(workbook_id):
    snap = selectors.snapshot(workbook_id=workbook_id, role="owner")
    return [row_id for row_id, _ in snap.sheets[0].rows], [c.id for c in snap.sheets[0].columns]


def stored(workbook_id):
    """Each row's stored cells, by row id (see Row)."""
    return list(Row.objects.filter(workbook_id=workbook_id).order_by("rid").values_list("values", flat=True))


def put(*cells, op="put"):
    return SetCells(op, tuple(CellWrite(*c) for c in cells))


def apply(workbook_id, user, operation):
    return services.apply_operation(workbook_id=workbook_id, user=user, operation=operation)


def limits(settings, **changes):
    settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, **changes}


class ApplyOperationTest:
    def test_apply_operation_set_writes_values_and_logs_change(self, ada, workbook_id):
        applied = apply(workbook_id, ada, put((1, 1, "x"), (2, 2, 3.5), (3, 1, True), op="s1"))
        assert not applied.duplicate
        change = applied.change
        assert (change.rev, change.op, change.kind, change.by.id, change.by.name) == (1, "s1", "set", ada.pk, "ada")
        assert change.data == {
            "sheet": 1,
            "cells": [{"row": 1, "col": 1, "value": "x"}, {"row": 2, "col": 2, "value": 3.5}, {"row": 3, "col": 1, "value": True}],
            "overwritten": [],
        }
        assert values(workbook_id) == {1: ["x", None], 2: [None, 3.5], 3: [True, None]}
        logged = Change.objects.get(workbook_id=workbook_id, rev=1)
        assert (logged.op, logged.kind, logged.data, logged.author_id) == ("s1", "set", change.data, ada.pk)

    def test_apply_operation_set_null_clears_cell(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "x"), op="a"))
        apply(workbook_id, ada, put((1, 1, None), op="b"))
        assert values(workbook_id)[1] == [None, None]
        assert Row.objects.get(workbook_id=workbook_id, rid=1).values == [None]

    def test_apply_operation_insert_rows_at_end_new_ids(self, ada, workbook_id):
        change = apply(workbook_id, ada, InsertRows("i", None, 2)).change
        assert change.data == {"sheet": 1, "before": None, "rows": [4, 5]}
        assert order(workbook_id)[0] == [1, 2, 3, 4, 5]
        assert Sheet.objects.get(workbook_id=workbook_id).row_count == 5

    def test_apply_operation_insert_cols_before_column(self, ada, workbook_id):
        change = apply(workbook_id, ada, InsertCols("i", 2, 1)).change
        assert (change.kind, change.data) == ("insert_cols", {"sheet": 1, "before": 2, "cols": [3]})
        assert order(workbook_id)[1] == [1, 3, 2]

    def test_apply_operation_delete_rows_removes_rows_and_cells(self, ada, workbook_id):
        apply(workbook_id, ada, put((2, 1, "gone"), (3, 1, "kept"), op="s"))
        change = apply(workbook_id, ada, DeleteRows("d", (2,))).change
        assert (change.kind, change.data) == ("delete_rows", {"sheet": 1, "rows": [2]})
        assert values(workbook_id) == {1: [None, None], 3: ["kept", None]}
        assert Sheet.objects.get(workbook_id=workbook_id).row_count == 2
        tombstone = Row.objects.get(workbook_id=workbook_id, rid=2)  # kept, with its cells, for undo
        assert (tombstone.deleted_rev, tombstone.values) == (change.rev, ["gone"])

    def test_apply_operation_delete_cols_removes_column_and_its_cells(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "gone"), (1, 2, "kept"), op="s"))
        change = apply(workbook_id, ada, DeleteCols("d", (1,))).change
        assert (change.kind, change.data) == ("delete_cols", {"sheet": 1, "cols": [1]})
        assert values(workbook_id) == {1: ["kept"], 2: [None], 3: [None]}
        assert Sheet.objects.get(workbook_id=workbook_id).col_count == 1
        assert Column.objects.get(workbook_id=workbook_id, cid=1).deleted_rev == change.rev  # a tombstone
        assert Row.objects.get(workbook_id=workbook_id, rid=1).values == ["gone", "kept"]  # no row rewritten; undo can bring it back

    def test_apply_operation_insert_cols_in_the_middle_rewrites_no_row(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "a"), (1, 2, "b"), (2, 1, "left only"), op="s"))
        apply(workbook_id, ada, InsertCols("i", 2, 2))
        assert values(workbook_id) == {1: ["a", None, None, "b"], 2: ["left only", None, None, None], 3: [None] * 4}
        assert stored(workbook_id) == [["a", "b"], ["left only"], []]
        apply(workbook_id, ada, put((1, 4, "new"), (2, 3, "new too"), op="t"))
        assert values(workbook_id) == {1: ["a", None, "new", "b"], 2: ["left only", "new too", None, None], 3: [None] * 4}
        assert stored(workbook_id) == [["a", "b", None, "new"], ["left only", None, "new too"], []]  # at the new columns' slots, 2 and 3

    def test_apply_operation_insert_rows_in_the_middle_moves_no_other_row(self, ada, workbook_id):
        before = dict(Row.objects.filter(workbook_id=workbook_id).values_list("rid", "position"))
        apply(workbook_id, ada, InsertRows("i", 2, 3))
        assert order(workbook_id)[0] == [1, 4, 5, 6, 2, 3]
        assert {rid: p for rid, p in Row.objects.filter(workbook_id=workbook_id).values_list("rid", "position") if rid <= 3} == before

    def test_apply_operation_new_column_takes_a_slot_no_column_holds(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 2, "b"), op="s"))
        apply(workbook_id, ada, DeleteCols("d", (2,)))
        apply(workbook_id, ada, InsertCols("i", 1, 1))
        assert dict(Column.objects.filter(workbook_id=workbook_id).values_list("cid", "slot")) == {1: 0, 2: 1, 3: 2}
        assert values(workbook_id) == {1: [None, None], 2: [None, None], 3: [None, None]}  # not the deleted column's "b"

    def test_apply_operation_insert_cols_at_end_rewrites_no_row(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 2, "b"), op="s"))
        apply(workbook_id, ada, InsertCols("i", None, 3))
        assert stored(workbook_id) == [[None, "b"], [], []]
        assert values(workbook_id) == {1: [None, "b", None, None, None], 2: [None] * 5, 3: [None] * 5}

    def test_apply_operation_set_past_a_rows_stored_end_extends_it(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 2, "b"), (2, 2, None), op="s"))
        assert stored(workbook_id) == [[None, "b"], [], []]

    def test_apply_operation_delete_cols_rewrites_no_row_snapshot_cuts_their_cells(self, ada, workbook_id):
        apply(workbook_id, ada, InsertCols("i", None, 2))
        apply(workbook_id, ada, put((1, 1, "a"), (2, 4, "d"), op="s"))
        apply(workbook_id, ada, DeleteCols("d", (2, 4)))
        assert values(workbook_id) == {1: ["a", None], 2: [None, None], 3: [None, None]}
        assert stored(workbook_id) == [["a"], [None, None, None, "d"], []]

    def test_apply_operation_many_inserts_at_one_spot_keep_the_order(self, ada, workbook_id, monkeypatch):
        # Little room between positions, so that neighbours are spread out again and again.
        monkeypatch.setattr(positions, "GAP", 8)
        monkeypatch.setattr(positions, "MIN_ROOM", 2)
        monkeypatch.setattr(positions, "FIRST_WINDOW", 1)
        workbook_id = services.create_workbook(user=ada, name="Dense", rows=3, cols=1).id
        expected = [1, 2, 3]
        for i in range(40):
            anchor = expected[[1, 0, -1, len(expected) // 2][i % 4]]
            count = 1 + i % 3
            ids = apply(workbook_id, ada, InsertRows(f"i{i}", anchor, count)).change.data["rows"]
            at = expected.index(anchor)
            expected[at:at] = ids
            if i % 5 == 0:
                apply(workbook_id, ada, DeleteRows(f"d{i}", (expected.pop(1),)))
            assert order(workbook_id)[0] == expected

    def test_apply_operation_rename_changes_name(self, ada, workbook_id):
        change = apply(workbook_id, ada, Rename("r", "Plan")).change
        assert (change.kind, change.data) == ("rename", {"name": "Plan"})
        assert Workbook.objects.get(pk=workbook_id).name == "Plan"

    def test_apply_operation_logs_what_each_change_replaced_not_sent(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "a"), (2, 2, 7), op="first"))
        apply(workbook_id, ada, put((1, 1, "b"), (2, 2, None), (3, 1, True), (1, 1, "c"), op="second"))
        apply(workbook_id, ada, Rename("r", "Plan"))
        apply(workbook_id, ada, DeleteRows("d", (3,)))
        logged = {c.op: c for c in selectors.changes_since(workbook_id=workbook_id, since=0).changes}
        assert logged["first"].replaced == {"values": [None, None]}
        # In the order of the change's cells; a cell written twice in one set keeps its first place.
        assert [(c["row"], c["col"]) for c in logged["second"].data["cells"]] == [(1, 1), (2, 2), (3, 1)]
        assert logged["second"].replaced == {"values": ["a", 7, None]}
        assert logged["r"].replaced == {"name": "Budget"}
        assert logged["d"].replaced == {}  # the row itself is kept, with its cells
        assert "replaced" not in json.dumps(protocol.change(logged["second"]))

    def test_apply_operation_editor_may_change(self, workbook_id):
        bob = user_with_role(workbook_id, "editor")
        assert apply(workbook_id, bob, put((1, 1, "bob"))).change.by.id == bob.pk

    def test_apply_operation_revs_consecutive(self, ada, workbook_id):
        operations = [put((1, 1, 1), op="a"), InsertRows("b", 1, 1), DeleteCols("c", (2,)), Rename("d", "N"), put((4, 1, 2), op="e")]
        revs = [apply(workbook_id, ada, o).change.rev for o in operations]
        assert revs == [1, 2, 3, 4, 5]
        assert list(Change.objects.filter(workbook_id=workbook_id).order_by("rev").values_list("rev", "op")) == list(zip(revs, "abcde", strict=True))
        assert Workbook.objects.get(pk=workbook_id).rev == 5

    def test_apply_operation_same_op_again_duplicate_original_change_nothing_applied(self, ada, workbook_id):
        first = apply(workbook_id, ada, put((1, 1, "first"), op="same"))
        again = apply(workbook_id, ada, put((1, 1, "second"), (2, 2, "more"), op="same"))
        assert again.duplicate
        assert again.change == first.change
        assert values(workbook_id)[1] == ["first", None] and values(workbook_id)[2] == [None, None]
        assert Workbook.objects.get(pk=workbook_id).rev == 1
        assert Change.objects.filter(workbook_id=workbook_id).count() == 1

    def test_apply_operation_retried_insert_not_inserted_twice(self, ada, workbook_id):
        apply(workbook_id, ada, InsertRows("ins", None, 2))
        again = apply(workbook_id, ada, InsertRows("ins", None, 2))
        assert again.duplicate and again.change.data == {"sheet": 1, "before": None, "rows": [4, 5]}
        assert Row.objects.filter(workbook_id=workbook_id).count() == 5

    def test_apply_operation_same_op_on_other_workbook_applied(self, ada, workbook_id):
        other = services.create_workbook(user=ada, name="Other", rows=1, cols=1).id
        apply(workbook_id, ada, put((1, 1, "a"), op="shared"))
        applied = apply(other, ada, put((1, 1, "b"), op="shared"))
        assert not applied.duplicate and applied.change.rev == 1
        assert values(other) == {1: ["b"]}

    def test_apply_operation_row_deleted_meanwhile_cell_dropped(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteRows("d", (2,)))
        change = apply(workbook_id, ada, put((2, 1, "lost"), (1, 1, "kept"), op="s")).change
        assert change.data == {"sheet": 1, "cells": [{"row": 1, "col": 1, "value": "kept"}], "overwritten": []}
        assert values(workbook_id) == {1: ["kept", None], 3: [None, None]}

    def test_apply_operation_column_deleted_meanwhile_cell_dropped(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteCols("d", (1,)))
        change = apply(workbook_id, ada, put((1, 1, "lost"), (1, 2, "kept"), op="s")).change
        assert change.data == {"sheet": 1, "cells": [{"row": 1, "col": 2, "value": "kept"}], "overwritten": []}
        assert Row.objects.get(workbook_id=workbook_id, rid=1).values == [None, "kept"]

    def test_apply_operation_every_cell_dropped_still_takes_a_rev(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteRows("d", (1,)))
        applied = apply(workbook_id, ada, put((1, 1, "lost"), op="s"))
        assert (applied.change.rev, applied.change.data) == (2, {"sheet": 1, "cells": [], "overwritten": []})
        assert apply(workbook_id, ada, put((1, 1, "lost"), op="s")).duplicate

    def test_apply_operation_delete_already_deleted_dropped_from_change(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteRows("d1", (1,)))
        change = apply(workbook_id, ada, DeleteRows("d2", (1, 2))).change
        assert change.data == {"sheet": 1, "rows": [2]}
        assert order(workbook_id)[0] == [3]
        assert Sheet.objects.get(workbook_id=workbook_id).row_count == 1

    @pytest.mark.parametrize(
        "operation",
        [
            put((1, 1, "x"), (4, 1, "y")),
            put((1, 3, "x")),
            put((0, 1, "x")),
            DeleteRows("d", (1, 9)),
            DeleteCols("d", (3,)),
            InsertRows("i", 4, 1),
            InsertCols("i", 3, 1),
            put((2**63, 1, "x")),
            DeleteCols("d", (2**63,)),
            InsertRows("i", 2**64, 1),
        ],
        ids=[
            "set-row",
            "set-col",
            "set-row-0",
            "delete-row",
            "delete-col",
            "insert-before-row",
            "insert-before-col",
            "set-huge",
            "delete-huge",
            "insert-huge",
        ],
    )
    def test_apply_operation_unknown_ids_not_found_nothing_changes(self, ada, workbook_id, operation):
        before = selectors.snapshot(workbook_id=workbook_id, role="owner")
        with pytest.raises(NotFound):
            apply(workbook_id, ada, operation)
        assert selectors.snapshot(workbook_id=workbook_id, role="owner") == before
        assert not Change.objects.filter(workbook_id=workbook_id).exists()

    def test_apply_operation_refused_set_refused_again_never_applied(self, ada, workbook_id):
        with pytest.raises(NotFound):
            apply(workbook_id, ada, put((9, 1, "x"), op="retry"))
        with pytest.raises(NotFound):  # an op id is never both refused and applied
            apply(workbook_id, ada, put((1, 1, "x"), op="retry"))
        assert Workbook.objects.get(pk=workbook_id).rev == 0

    def test_apply_operation_insert_before_deleted_row_not_found(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteRows("d", (2,)))
        with pytest.raises(NotFound, match="was deleted"):
            apply(workbook_id, ada, InsertRows("i", 2, 1))
        assert order(workbook_id)[0] == [1, 3]
        assert Workbook.objects.get(pk=workbook_id).rev == 1

    def test_apply_operation_insert_before_deleted_column_not_found(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteCols("d", (1,)))
        with pytest.raises(NotFound):
            apply(workbook_id, ada, InsertCols("i", 1, 1))

    def test_apply_operation_inserts_in_middle_keep_order(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "one"), (2, 1, "two"), (3, 1, "three"), op="s"))
        apply(workbook_id, ada, InsertRows("a", 2, 2))  # rows 4, 5 before row 2
        apply(workbook_id, ada, InsertRows("b", 5, 1))  # row 6 before row 5
        apply(workbook_id, ada, InsertRows("c", 1, 1))  # row 7 first
        apply(workbook_id, ada, InsertCols("d", 1, 1))  # column 3 first
        apply(workbook_id, ada, InsertCols("e", 2, 2))  # columns 4, 5 before column 2
        rows, cols = order(workbook_id)
        assert rows == [7, 1, 4, 6, 5, 2, 3]
        assert cols == [3, 1, 4, 5, 2]
        assert [v[1] for v in values(workbook_id).values()] == [None, "one", None, None, None, "two", "three"]

    def test_apply_operation_deleted_ids_never_reissued(self, ada, workbook_id):
        apply(workbook_id, ada, DeleteRows("d", (3,)))
        assert apply(workbook_id, ada, InsertRows("i", None, 1)).change.data["rows"] == [4]

    def test_apply_operation_viewer_forbidden_nothing_changes(self, workbook_id):
        cy = user_with_role(workbook_id, "viewer")
        for operation in (put((1, 1, "x")), InsertRows("i", None, 1), DeleteRows("d", (1,)), Rename("r", "N")):
            with pytest.raises(Forbidden):
                apply(workbook_id, cy, operation)
        assert Workbook.objects.get(pk=workbook_id).rev == 0
        assert Workbook.objects.get(pk=workbook_id).name == "Budget"

    def test_apply_operation_no_role_not_found(self, workbook_id):
        dee = baker.make(get_user_model())
        with pytest.raises(NotFound):
            apply(workbook_id, dee, put((1, 1, "x")))
        assert values(workbook_id)[1] == [None, None]

    def test_apply_operation_missing_workbook_not_found(self, ada, workbook_id):
        with pytest.raises(NotFound):
            apply(workbook_id + 1000, ada, put((1, 1, "x")))

    def test_apply_operation_rows_beyond_max_too_large(self, settings, ada, workbook_id):
        limits(settings, max_rows=5)
        apply(workbook_id, ada, InsertRows("a", None, 2))
        with pytest.raises(TooLarge):
            apply(workbook_id, ada, InsertRows("b", None, 1))
        assert Sheet.objects.get(workbook_id=workbook_id).row_count == 5
        apply(workbook_id, ada, DeleteRows("c", (1,)))
        assert apply(workbook_id, ada, InsertRows("d", None, 1)).change.rev == 3

    def test_apply_operation_cols_beyond_max_too_large(self, settings, ada, workbook_id):
        limits(settings, max_cols=3)
        with pytest.raises(TooLarge):
            apply(workbook_id, ada, InsertCols("a", None, 2))
        assert order(workbook_id)[1] == [1, 2]
        assert Workbook.objects.get(pk=workbook_id).rev == 0


class CommitOperationTest:
    def test_commit_operation_time_injected_logged(self, ada, workbook_id):
        now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        applied = services.commit_operation(workbook_id=workbook_id, user=ada, operation=put((1, 1, "x")), now=now)
        assert applied.change.at == now
        assert Change.objects.get(workbook_id=workbook_id).at == now
        assert selectors.changes_since(workbook_id=workbook_id, since=0).changes == (applied.change,)

    def test_commit_operation_every_kind_applied(self, ada, workbook_id):
        for operation in (
            put((1, 1, "x")),
            InsertRows("ir", None, 1),
            InsertCols("ic", None, 1),
            DeleteRows("dr", (2,)),
            DeleteCols("dc", (1,)),
            Rename("rn", "N"),
        ):
            assert services.commit_operation(workbook_id=workbook_id, user=ada, operation=operation).change.kind == operation.kind
        snap = selectors.snapshot(workbook_id=workbook_id, role="owner")
        assert (snap.rev, snap.name) == (6, "N")
        assert [r for r, _ in snap.sheets[0].rows] == [1, 3, 4]
        assert [c.id for c in snap.sheets[0].columns] == [2, 3]


class CommitSetsTest:
    def test_commit_sets_each_at_its_own_rev_in_order(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor")

        results = services.commit_sets(
            workbook_id=workbook_id,
            requests=[(ada, put((1, 1, "a"), op="a")), (bob, put((1, 1, "b"), (2, 2, "c"), op="b")), (ada, put((1, 2, "d"), op="c"))],
        )

        assert [(r.change.rev, r.change.op, r.change.by.name, r.duplicate) for r in results] == [
            (1, "a", "ada", False),
            (2, "b", bob.username, False),
            (3, "c", "ada", False),
        ]
        assert values(workbook_id) == {1: ["b", "d"], 2: [None, "c"], 3: [None, None]}
        assert selectors.changes_since(workbook_id=workbook_id, since=0).changes == tuple(r.change for r in results)
        assert Workbook.objects.get(pk=workbook_id).rev == 3

    def test_commit_sets_failing_ones_get_their_error_and_change_nothing_others_commit(self, ada, workbook_id):
        viewer = user_with_role(workbook_id, "viewer")
        stranger = baker.make(get_user_model())

        results = services.commit_sets(
            workbook_id=workbook_id,
            requests=[
                (ada, put((1, 1, "kept"), op="ok-1")),
                (ada, put((1, 2, "no"), (99, 1, "no"), op="unknown-row")),
                (viewer, put((1, 1, "no"), op="viewer")),
                (stranger, put((1, 1, "no"), op="stranger")),
                (ada, put((2, 1, "also kept"), op="ok-2")),
            ],
        )

        assert [type(r).__name__ for r in results] == ["Applied", "NotFound", "Forbidden", "NotFound", "Applied"]
        assert [results[0].change.rev, results[4].change.rev] == [1, 2]
        assert values(workbook_id) == {1: ["kept", None], 2: ["also kept", None], 3: [None, None]}
        assert list(Change.objects.filter(workbook_id=workbook_id).order_by("rev").values_list("op", flat=True)) == ["ok-1", "ok-2"]

    def test_commit_sets_op_id_seen_before_or_twice_in_batch_duplicate_of_the_original(self, ada, workbook_id):
        first = services.commit_operation(workbook_id=workbook_id, user=ada, operation=put((1, 1, "first"), op="old"))

        results = services.commit_sets(
            workbook_id=workbook_id,
            requests=[(ada, put((1, 1, "again"), op="old")), (ada, put((2, 1, "new"), op="new")), (ada, put((2, 1, "twice"), op="new"))],
        )

        assert [(r.change, r.duplicate) for r in results] == [(first.change, True), (results[1].change, False), (results[1].change, True)]
        assert (values(workbook_id)[1], values(workbook_id)[2]) == (["first", None], ["new", None])
        assert Workbook.objects.get(pk=workbook_id).rev == 2

    def test_commit_sets_more_rows_than_one_update_takes_every_row_written(self, ada, workbook_id, monkeypatch):
        monkeypatch.setattr(store, "ROWS_PER_UPDATE", 2)

        (result,) = services.commit_sets(workbook_id=workbook_id, requests=[(ada, put((1, 1, "a"), (2, 2, 7), (3, 1, True), op="rows"))])

        assert values(workbook_id) == {1: ["a", None], 2: [None, 7], 3: [True, None]}
        assert [c["value"] for c in result.change.data["cells"]] == ["a", 7, True]

    def test_commit_sets_workbook_gone_every_one_not_found(self, ada, workbook_id):
        services.delete_workbook(workbook_id=workbook_id, user=ada)

        results = services.commit_sets(workbook_id=workbook_id, requests=[(ada, put((1, 1, "x"), op="a")), (ada, put((1, 1, "y"), op="b"))])

        assert [type(r) for r in results] == [NotFound, NotFound]


@pytest.mark.django_db(transaction=True)
class WorkbookQueuesTest:
    async def test_concurrent_sets_committed_in_one_batch_and_broadcast_in_one_message(self, ada, workbook_id, layer):
        channel = await layer.new_channel()
        await layer.group_add(broadcast.group_name(workbook_id), channel)
        operations = [put((1 + n % 3, 1, f"v{n}"), op=f"op-{n}") for n in range(5)]

        applied = await asyncio.gather(*(services.submit_operation(workbook_id=workbook_id, user=ada, operation=o) for o in operations))

        assert [(a.change.rev, a.change.op, a.duplicate, a.broadcast) for a in applied] == [(n + 1, f"op-{n}", False, True) for n in range(5)]
        message = await layer.receive(channel)
        assert [(rev, json.loads(text)["op"]) for rev, text in message["changes"]] == [(n + 1, f"op-{n}") for n in range(5)]

    async def test_batch_stops_before_its_cells_pass_the_limit(self, ada, workbook_id, layer, monkeypatch):
        monkeypatch.setattr(batching, "MAX_BATCH_CELLS", 3)
        channel = await layer.new_channel()
        await layer.group_add(broadcast.group_name(workbook_id), channel)
        operations = [put((1, 1, "a"), (1, 2, "b"), op="two"), put((2, 1, "c"), op="one"), put((3, 1, "d"), (3, 2, "e"), op="two more")]

        applied = await asyncio.gather(*(services.submit_operation(workbook_id=workbook_id, user=ada, operation=o) for o in operations))

        assert [a.change.rev for a in applied] == [1, 2, 3]
        batches = [[json.loads(text)["op"] for _, text in (await layer.receive(channel))["changes"]] for _ in range(2)]
        assert batches == [["two", "one"], ["two more"]]

    async def test_batch_with_an_error_raises_it_for_that_operation_only(self, ada, workbook_id, layer):
        operations = [put((1, 1, "a"), op="a"), put((99, 1, "b"), op="bad"), put((1, 1, "c"), op="c")]

        results = await asyncio.gather(
            *(services.submit_operation(workbook_id=workbook_id, user=ada, operation=o) for o in operations), return_exceptions=True
        )

        assert [r.change.rev if isinstance(r, services.Applied) else type(r) for r in results] == [1, NotFound, 2]

    async def test_batch_failing_in_the_database_fails_only_the_operation_at_fault(self, ada, workbook_id, layer):
        # A value no encoder can write (a lone surrogate: the protocol refuses it, so made here by hand)
        # fails the batch's transaction; the others, another user's among them, are applied.
        bob = await database_sync_to_async(user_with_role)(workbook_id, "editor", "bob")
        channel = await layer.new_channel()
        await layer.group_add(broadcast.group_name(workbook_id), channel)
        submitted = [(ada, put((1, 1, "a"), op="a")), (bob, put((2, 1, "\ud800"), op="poison")), (bob, put((3, 1, "b"), op="b"))]

        results = await asyncio.gather(
            *(services.submit_operation(workbook_id=workbook_id, user=u, operation=o) for u, o in submitted), return_exceptions=True
        )

        assert isinstance(results[1], Exception) and not isinstance(results[1], OperationError)
        assert [(r.change.rev, r.change.op) for r in (results[0], results[2])] == [(1, "a"), (2, "b")]
        message = await layer.receive(channel)
        assert [json.loads(text)["op"] for _, text in message["changes"]] == ["a", "b"]
        stored = await database_sync_to_async(values)(workbook_id)
        assert [stored[r][0] for r in (1, 2, 3)] == ["a", None, "b"]

    async def test_batch_with_the_database_down_fails_every_operation(self, ada, workbook_id, layer, monkeypatch):
        def down(workbook_id, requests):
            raise OperationalError("connection refused")

        monkeypatch.setattr(batching, "_commit_batch", down)
        operations = [put((1, 1, "a"), op="a"), put((2, 1, "b"), op="b")]

        results = await asyncio.gather(
            *(services.submit_operation(workbook_id=workbook_id, user=ada, operation=o) for o in operations), return_exceptions=True
        )

        assert [type(r) for r in results] == [OperationalError, OperationalError]


@pytest.fixture
def layer(settings):
    """A fresh in-memory channel layer for the test."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield get_channel_layer()
    channel_layers.backends.clear()


@pytest.fixture
def listener(layer, workbook_id):
    """A channel in the workbook's group; ``listener()`` returns the next message sent to it."""
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(broadcast.group_name(workbook_id), channel)
    return lambda: async_to_sync(layer.receive)(channel)


class BroadcastAfterCommitTest:
    def test_apply_operation_group_receives_encoded_change(self, ada, workbook_id, listener):
        applied = apply(workbook_id, ada, put((1, 1, "x"), op="s"))
        message = listener()
        assert message == {"type": "workbook.changes", "workbook": workbook_id, "changes": [[1, protocol.encode(protocol.change(applied.change))]]}
        assert json.loads(message["changes"][0][1])["cells"] == [{"row": 1, "col": 1, "value": "x"}]
        assert Change.objects.filter(workbook_id=workbook_id, rev=1).exists()

    def test_apply_operation_failed_or_duplicate_broadcasts_nothing(self, ada, workbook_id, listener):
        viewer = user_with_role(workbook_id, "viewer")
        apply(workbook_id, ada, put((1, 1, "first"), op="first"))
        assert listener()["changes"][0][0] == 1
        with pytest.raises(NotFound):
            apply(workbook_id, ada, put((9, 1, "x"), op="unknown"))
        with pytest.raises(Forbidden):
            apply(workbook_id, viewer, put((1, 1, "x"), op="viewer"))
        assert apply(workbook_id, ada, put((1, 1, "again"), op="first")).duplicate
        apply(workbook_id, ada, put((1, 1, "second"), op="second"))
        message = listener()  # the next message is the second change: nothing was sent in between
        assert [(rev, json.loads(text)["op"]) for rev, text in message["changes"]] == [(2, "second")]

    # These tests run inside a transaction that never commits: the members' and workbooks' sockets are
    # told once their caller's transaction commits, and django_capture_on_commit_callbacks plays that.

    def test_delete_workbook_group_told_closed(self, ada, workbook_id, listener, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            services.delete_workbook(workbook_id=workbook_id, user=ada)
        assert listener() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_WORKBOOK_DELETED}

    def test_set_member_role_changed_that_user_told_to_reconnect(self, ada, workbook_id, listener, django_capture_on_commit_callbacks):
        bob = user_with_role(workbook_id, "editor", username="bob")
        with django_capture_on_commit_callbacks(execute=True):
            assert services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="viewer") is False
        assert listener() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_ROLE_CHANGED, "user_id": bob.pk}

    def test_remove_member_that_user_told_closed(self, ada, workbook_id, listener, django_capture_on_commit_callbacks):
        bob = user_with_role(workbook_id, "editor", username="bob")
        with django_capture_on_commit_callbacks(execute=True):
            services.remove_member(workbook_id=workbook_id, user=ada, username="bob")
        assert listener() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_ACCESS_REMOVED, "user_id": bob.pk}

    def test_member_change_in_callers_transaction_told_once_it_commits(self, ada, workbook_id, listener, django_capture_on_commit_callbacks):
        # The admin site makes one transaction of each save: a socket told before it commits would
        # reconnect and read the old role.
        bob = user_with_role(workbook_id, "editor", username="bob")
        with django_capture_on_commit_callbacks() as told_at_commit:
            services.remove_member(workbook_id=workbook_id, user=ada, username="bob")
        assert len(told_at_commit) == 1
        told_at_commit[0]()
        assert listener() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_ACCESS_REMOVED, "user_id": bob.pk}


class CreateWorkbookTest:
    def test_create_workbook_defaults_100_by_26_owned_by_creator(self, ada):
        snap = services.create_workbook(user=ada, name="  New  ")
        assert (snap.name, snap.rev, snap.role) == ("New", 0, "owner")
        assert len(snap.sheets[0].rows) == 100 and len(snap.sheets[0].columns) == 26
        assert [r for r, _ in snap.sheets[0].rows] == list(range(1, 101))
        assert (snap.sheets[0].columns[0].title, snap.sheets[0].columns[25].title) == ("A", "Z")
        assert all(v is None for _, vals in snap.sheets[0].rows for v in vals)
        assert selectors.role_of(user=ada, workbook_id=snap.id) == "owner"
        workbook = Workbook.objects.get(pk=snap.id)
        sheet = Sheet.objects.get(workbook=workbook)
        assert (workbook.sheets_issued, workbook.rows_issued, workbook.cols_issued) == (1, 100, 26)
        assert (sheet.sid, sheet.name, sheet.row_count, sheet.col_count) == (1, "Sheet1", 100, 26)

    def test_create_workbook_empty_workbook_allowed(self, ada):
        snap = services.create_workbook(user=ada, name="Empty", rows=0, cols=0)
        assert snap.sheets[0].rows == () and snap.sheets[0].columns == ()

    @pytest.mark.parametrize("name", ["", "   ", None, 3])
    def test_create_workbook_bad_name_invalid_nothing_created(self, ada, name):
        with pytest.raises(Invalid):
            services.create_workbook(user=ada, name=name)
        assert not Workbook.objects.exists()

    def test_create_workbook_long_name_too_large(self, ada):
        with pytest.raises(TooLarge):
            services.create_workbook(user=ada, name="n" * 201)

    @pytest.mark.parametrize("count", [-1, True, "10", 2.0, None])
    def test_create_workbook_bad_counts_invalid(self, ada, count):
        with pytest.raises(Invalid):
            services.create_workbook(user=ada, name="S", rows=count)
        with pytest.raises(Invalid):
            services.create_workbook(user=ada, name="S", cols=count)
        assert not Workbook.objects.exists()

    def test_create_workbook_beyond_limits_too_large(self, settings, ada):
        limits(settings, max_rows=5, max_cols=2)
        assert len(services.create_workbook(user=ada, name="S", rows=5, cols=2).sheets[0].rows) == 5
        with pytest.raises(TooLarge):
            services.create_workbook(user=ada, name="S", rows=6, cols=2)
        with pytest.raises(TooLarge):
            services.create_workbook(user=ada, name="S", rows=1, cols=3)
        assert Workbook.objects.count() == 1


class DeleteWorkbookTest:
    def test_delete_workbook_owner_removes_everything(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "x")))
        services.delete_workbook(workbook_id=workbook_id, user=ada)
        assert not Workbook.objects.filter(pk=workbook_id).exists()
        for model in (Row, Column, Member, Change):
            assert not model.objects.filter(workbook_id=workbook_id).exists()

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_delete_workbook_not_owner_forbidden(self, workbook_id, role):
        user = user_with_role(workbook_id, role)
        with pytest.raises(Forbidden):
            services.delete_workbook(workbook_id=workbook_id, user=user)
        assert Workbook.objects.filter(pk=workbook_id).exists()

    def test_delete_workbook_no_role_not_found(self, workbook_id):
        with pytest.raises(NotFound):
            services.delete_workbook(workbook_id=workbook_id, user=baker.make(get_user_model()))
        assert Workbook.objects.filter(pk=workbook_id).exists()


class SetMemberTest:
    @pytest.fixture
    def bob(self):
        return baker.make(get_user_model(), username="bob")

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_set_member_new_user_gets_role(self, ada, workbook_id, bob, role):
        assert services.set_member(workbook_id=workbook_id, user=ada, username="bob", role=role) is True
        assert selectors.role_of(user=bob, workbook_id=workbook_id) == role

    def test_set_member_existing_role_changed(self, ada, workbook_id, bob):
        services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="editor")
        assert services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="viewer") is False
        assert selectors.role_of(user=bob, workbook_id=workbook_id) == "viewer"
        assert Member.objects.filter(workbook_id=workbook_id, user=bob).count() == 1

    def test_set_member_past_members_limit_too_large_role_changes_still_allowed(self, ada, workbook_id, bob, settings):
        limits(settings, max_members=2)  # ada and bob
        services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="editor")
        baker.make(get_user_model(), username="cy")
        with pytest.raises(TooLarge):
            services.set_member(workbook_id=workbook_id, user=ada, username="cy", role="viewer")
        assert services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="viewer") is False
        assert Member.objects.filter(workbook_id=workbook_id).count() == 2

    def test_set_member_same_role_again_unchanged(self, ada, workbook_id, bob):
        services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="viewer")
        assert services.set_member(workbook_id=workbook_id, user=ada, username="bob", role="viewer") is False
        assert selectors.role_of(user=bob, workbook_id=workbook_id) == "viewer"

    @pytest.mark.parametrize("role", ["owner", "admin", "", None, 1])
    def test_set_member_role_not_editor_or_viewer_invalid(self, ada, workbook_id, bob, role):
        with pytest.raises(Invalid):
            services.set_member(workbook_id=workbook_id, user=ada, username="bob", role=role)
        assert selectors.role_of(user=bob, workbook_id=workbook_id) is None

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_set_member_not_owner_forbidden(self, workbook_id, bob, role):
        user = user_with_role(workbook_id, role)
        with pytest.raises(Forbidden):
            services.set_member(workbook_id=workbook_id, user=user, username="bob", role="editor")
        assert selectors.role_of(user=bob, workbook_id=workbook_id) is None

    def test_set_member_no_role_not_found(self, workbook_id, bob):
        with pytest.raises(NotFound):
            services.set_member(workbook_id=workbook_id, user=bob, username="bob", role="editor")
        assert selectors.role_of(user=bob, workbook_id=workbook_id) is None

    def test_set_member_owner_role_conflict(self, ada, workbook_id):
        with pytest.raises(services.Conflict):
            services.set_member(workbook_id=workbook_id, user=ada, username="ada", role="viewer")
        assert selectors.role_of(user=ada, workbook_id=workbook_id) == "owner"

    def test_set_member_unknown_user_not_found(self, ada, workbook_id):
        with pytest.raises(NotFound, match="nobody"):
            services.set_member(workbook_id=workbook_id, user=ada, username="nobody", role="editor")
        assert Member.objects.filter(workbook_id=workbook_id).count() == 1

    def test_set_member_inactive_user_same_not_found_as_unknown_no_role_given(self, ada, workbook_id):
        inactive = baker.make(get_user_model(), username="gone", is_active=False)
        answers = []
        for username in ("gone", "nobody"):
            with pytest.raises(NotFound) as refused:
                services.set_member(workbook_id=workbook_id, user=ada, username=username, role="editor")
            answers.append(refused.value.message.replace(username, "<name>"))
        assert answers[0] == answers[1]
        assert selectors.role_of(user=inactive, workbook_id=workbook_id) is None


class RemoveMemberTest:
    def test_remove_member_owner_removes_role(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor", username="bob")
        services.remove_member(workbook_id=workbook_id, user=ada, username="bob")
        assert selectors.role_of(user=bob, workbook_id=workbook_id) is None

    def test_remove_member_without_role_inactive_or_unknown_same_not_found(self, ada, workbook_id):
        baker.make(get_user_model(), username="bob")
        baker.make(get_user_model(), username="gone", is_active=False)
        answers = []
        for username in ("bob", "gone", "nobody"):
            with pytest.raises(NotFound) as refused:
                services.remove_member(workbook_id=workbook_id, user=ada, username=username)
            answers.append(refused.value.message.replace(username, "<name>"))
        assert answers[0] == answers[1] == answers[2]

    def test_remove_member_deactivated_member_role_taken_away(self, ada, workbook_id):
        gone = user_with_role(workbook_id, "viewer", username="gone")
        gone.is_active = False
        gone.save()
        services.remove_member(workbook_id=workbook_id, user=ada, username="gone")
        assert selectors.role_of(user=gone, workbook_id=workbook_id) is None

    def test_remove_member_unknown_user_not_found(self, ada, workbook_id):
        with pytest.raises(NotFound):
            services.remove_member(workbook_id=workbook_id, user=ada, username="nobody")

    def test_remove_member_owner_conflict(self, ada, workbook_id):
        with pytest.raises(services.Conflict):
            services.remove_member(workbook_id=workbook_id, user=ada, username="ada")
        assert selectors.role_of(user=ada, workbook_id=workbook_id) == "owner"

    def test_remove_member_editor_forbidden(self, workbook_id):
        bob = user_with_role(workbook_id, "editor", username="bob")
        user_with_role(workbook_id, "viewer", username="cy")
        with pytest.raises(Forbidden):
            services.remove_member(workbook_id=workbook_id, user=bob, username="cy")
        assert Member.objects.filter(workbook_id=workbook_id).count() == 3

    def test_remove_member_no_role_not_found(self, workbook_id):
        user_with_role(workbook_id, "viewer", username="cy")
        with pytest.raises(NotFound):
            services.remove_member(workbook_id=workbook_id, user=baker.make(get_user_model()), username="cy")
        assert Member.objects.filter(workbook_id=workbook_id).count() == 2


class AsAdminTest:
    """Staff acting through the admin site: the owner's rights without a role, every other rule kept."""

    @pytest.fixture
    def staff(self):
        return baker.make(get_user_model(), username="root", is_staff=True)

    def test_staff_shares_changes_and_removes_roles_without_one_of_their_own(self, workbook_id, staff):
        bob = baker.make(get_user_model(), username="bob")
        assert services.set_member(workbook_id=workbook_id, user=staff, username="bob", role="viewer", as_admin=True) is True
        assert services.set_member(workbook_id=workbook_id, user=staff, username="bob", role="editor", as_admin=True) is False
        assert selectors.role_of(user=bob, workbook_id=workbook_id) == "editor"
        services.remove_member(workbook_id=workbook_id, user=staff, username="bob", as_admin=True)
        assert selectors.role_of(user=bob, workbook_id=workbook_id) is None
        assert selectors.role_of(user=staff, workbook_id=workbook_id) is None

    def test_staff_owner_role_still_cannot_change_or_go(self, ada, workbook_id, staff):
        with pytest.raises(services.Conflict):
            services.set_member(workbook_id=workbook_id, user=staff, username="ada", role="viewer", as_admin=True)
        with pytest.raises(services.Conflict):
            services.remove_member(workbook_id=workbook_id, user=staff, username="ada", as_admin=True)
        assert selectors.role_of(user=ada, workbook_id=workbook_id) == "owner"

    def test_staff_rename_logged_by_them_at_next_rev(self, workbook_id, staff):
        applied = services.apply_operation(workbook_id=workbook_id, user=staff, operation=Rename("admin-1", "Renamed"), as_admin=True)
        assert (applied.change.rev, applied.change.kind, applied.change.by.name) == (1, "rename", "root")
        assert Workbook.objects.get(pk=workbook_id).name == "Renamed"

    def test_staff_deletes_workbook(self, workbook_id, staff):
        services.delete_workbook(workbook_id=workbook_id, user=staff, as_admin=True)
        assert not Workbook.objects.filter(pk=workbook_id).exists()

    def test_as_admin_not_staff_forbidden(self, workbook_id):
        someone = baker.make(get_user_model(), username="someone")
        with pytest.raises(Forbidden):
            services.delete_workbook(workbook_id=workbook_id, user=someone, as_admin=True)
        with pytest.raises(Forbidden):
            services.apply_operation(workbook_id=workbook_id, user=someone, operation=Rename("x", "Mine"), as_admin=True)
        assert Workbook.objects.get(pk=workbook_id).name == "Budget"


# ---------------------------------------------------------------- revisions across processes

WORKERS = 4
OPS_PER_WORKER = 30

SETUP = """
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import services
user = get_user_model().objects.create_user(username="writer", password="unused-pw")
print(services.create_workbook(user=user, name="Race", rows=10, cols=3).id)
"""

# Each worker waits at a gate so all of them write at once, then applies OPS_PER_WORKER operations
# (sets and inserts), retries its first one, and sends one op id every worker shares.
WORKER = """
import json, os, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import services
from workbooks.domain.values import CellWrite, InsertRows, SetCells

workbook_id, worker, count, gate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
user = get_user_model().objects.get(username="writer")
while not os.path.exists(gate):
    time.sleep(0.005)
results = []
def run(operation):
    applied = services.apply_operation(workbook_id=workbook_id, user=user, operation=operation)
    results.append([operation.op, applied.change.rev, applied.duplicate])
for i in range(count):
    op = f"w{worker}-{i}"
    run(InsertRows(op, None, 1) if i % 7 == 3 else SetCells(op, (CellWrite(worker + 1, 1, i),)))
    if i == count // 2:
        run(SetCells("shared", (CellWrite(10, 1, worker),)))
run(SetCells(f"w{worker}-0", (CellWrite(worker + 1, 2, "retry"),)))
print(json.dumps(results))
"""

REPORT = """
import json
import django
django.setup()
from workbooks.models import Change, Row, Workbook
workbook = Workbook.objects.get(name="Race")
print(json.dumps({
    "rev": workbook.rev,
    "log": list(Change.objects.filter(workbook=workbook).order_by("rev").values_list("rev", "op")),
    "rows": sorted(Row.objects.filter(workbook=workbook).values_list("rid", flat=True)),
    "rows_issued": workbook.rows_issued,
}))
"""


def race(database_url: str, tmp_path) -> None:
    """Migrates the database, runs WORKERS processes writing to one workbook at once, and checks the log."""
    env = support.app_env(database_url=database_url, var_dir=tmp_path)
    support.manage(env, "migrate", "--noinput")
    workbook_id = int(support.run_python(env, SETUP))
    gate = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(workbook_id), str(w), str(OPS_PER_WORKER), str(gate)],
            cwd=support.ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    gate.touch()
    outputs = []
    for proc in workers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    report = json.loads(support.run_python(env, REPORT))

    inserts = sum(1 for i in range(OPS_PER_WORKER) if i % 7 == 3)
    total = WORKERS * OPS_PER_WORKER + 1  # every worker's own ops, and "shared" once
    assert report["rev"] == total
    assert [rev for rev, _ in report["log"]] == list(range(1, total + 1))
    logged_ops = [op for _, op in report["log"]]
    assert sorted(logged_ops) == sorted([f"w{w}-{i}" for w in range(WORKERS) for i in range(OPS_PER_WORKER)] + ["shared"])

    by_op = {op: rev for rev, op in report["log"]}
    for results in outputs:
        revs = [rev for op, rev, duplicate in results if not duplicate]
        assert revs == sorted(revs)  # one process sees its own changes in order
        for op, rev, _ in results:
            assert by_op[op] == rev  # a duplicate answers with the original change's rev
        assert results[-1] == [results[0][0], results[0][1], True]  # the retry of the worker's first op
    shared = [duplicate for results in outputs for op, _, duplicate in results if op == "shared"]
    assert sorted(shared) == [False] + [True] * (WORKERS - 1)
    assert report["rows_issued"] == 10 + WORKERS * inserts
    assert report["rows"] == list(range(1, 10 + WORKERS * inserts + 1))


@pytest.mark.processes
class CommitOperationAcrossProcessesTest:
    def test_commit_operation_sqlite_file_processes_at_once_consecutive_revs(self, tmp_path):
        race(f"sqlite:///{tmp_path / 'race.sqlite3'}", tmp_path)

    def test_commit_operation_postgresql_processes_at_once_consecutive_revs(self, postgres, tmp_path):
        with postgres.database(prefix="tabula_revtest") as url:
            race(url, tmp_path)


# The same column changes on each database: the snapshot puts the cells in column order in SQL on
# PostgreSQL and in Python elsewhere, so both are run for real.
COLUMNS_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import protocol, selectors, services
from workbooks.domain.values import CellWrite, DeleteCols, InsertCols, SetCells
from workbooks.models import Row

user = get_user_model().objects.create_user(username="cols", password="unused-pw")
workbook_id = services.create_workbook(user=user, name="Cols", rows=3, cols=3).id
def apply(operation):
    services.commit_operation(workbook_id=workbook_id, user=user, operation=operation)
apply(SetCells("s", (CellWrite(1, 1, "a"), CellWrite(1, 3, 3.5), CellWrite(2, 2, True), CellWrite(3, 1, None))))
apply(InsertCols("i", 2, 2))       # columns 1 4 5 2 3
apply(InsertCols("end", None, 1))  # columns 1 4 5 2 3 6
apply(SetCells("t", (CellWrite(2, 5, "x"), CellWrite(3, 6, "far"))))
apply(DeleteCols("d", (1, 2)))     # columns 4 5 3 6
apply(InsertCols("first", 4, 1))   # columns 7 4 5 3 6
with selectors.snapshot_rows(workbook_id=workbook_id, role="owner") as (head, texts):
    api = json.loads(b"".join(protocol.snapshot_pieces(head, texts)))
print(json.dumps({
    "snapshot": [list(v) for _, v in selectors.snapshot(workbook_id=workbook_id, role="owner").sheets[0].rows],
    "api": api,
    "stored": list(Row.objects.filter(workbook_id=workbook_id).order_by("rid").values_list("values", flat=True)),
}))
"""


class RowStorageAcrossDatabasesTest:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"])
    def test_column_changes_keep_cells_in_column_order(self, database, request, tmp_path):
        result = support.scenario_result(database, request, tmp_path, COLUMNS_SCENARIO)
        expected = [[None, None, None, 3.5, None], [None, None, "x", None, None], [None, None, None, None, "far"]]
        assert result["snapshot"] == expected
        assert [c["id"] for c in result["api"]["sheets"][0]["columns"]] == [7, 4, 5, 3, 6]
        assert result["api"]["sheets"][0]["rows"] == [{"id": i + 1, "values": v} for i, v in enumerate(expected)]
        # Each cell at its column's slot (1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6), deleted ones too.
        assert result["stored"] == [["a", None, 3.5], [None, True, None, None, "x"], [None] * 5 + ["far"]]


# One batch of set operations with every outcome commit_sets knows, on each database: on PostgreSQL
# every list goes as one array parameter, bound apart from the statement.
SETS_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import services
from workbooks.domain.values import CellWrite, DeleteRows, SetCells
from workbooks.models import Change, Member, Row

users = get_user_model().objects
owner, viewer, stranger = (users.create_user(username=n, password="unused-pw") for n in ("owner", "viewer", "stranger"))
workbook_id = services.create_workbook(user=owner, name="Sets", rows=3, cols=2).id
Member.objects.create(workbook_id=workbook_id, user=viewer, role="viewer")
services.commit_operation(workbook_id=workbook_id, user=owner, operation=SetCells("before", (CellWrite(1, 1, "old"),)))
services.commit_operation(workbook_id=workbook_id, user=owner, operation=DeleteRows("gone", (3,)))
tricky = 'say "hi" \\\\ \\u00e9\\u4e2d \\U0001F600 , ]'
results = services.commit_sets(workbook_id=workbook_id, requests=[
    (owner, SetCells("a", (CellWrite(1, 1, tricky), CellWrite(2, 2, 7), CellWrite(3, 1, "dropped")))),
    (viewer, SetCells("v", (CellWrite(1, 2, "no"),))),
    (stranger, SetCells("s", (CellWrite(1, 2, "no"),))),
    (owner, SetCells("before", (CellWrite(1, 1, "again"),))),
    (owner, SetCells("unknown", (CellWrite(99, 1, "no"),))),
    (owner, SetCells("a", (CellWrite(2, 1, "repeat"),))),
    (owner, SetCells("b", (CellWrite(2, 1, None), CellWrite(1, 2, False)))),
])
print(json.dumps({
    "results": [type(r).__name__ if isinstance(r, Exception) else [r.change.rev, r.change.op, r.duplicate] for r in results],
    "log": list(
        Change.objects.filter(workbook_id=workbook_id, rev__gt=2).order_by("rev").values_list("rev", "op", "author_id", "author_name", "data")
    ),
    "owner": owner.pk,
    "tricky": tricky,
    "stored": list(Row.objects.filter(workbook_id=workbook_id).order_by("rid").values_list("values", flat=True)),
}))
"""


def based(rev, *cells, op):
    """A set made against revision ``rev`` (the revision its sender's grid showed)."""
    return SetCells(op, tuple(CellWrite(*c) for c in cells), rev)


def overwrite(row, col, user, rev, value):
    return {"row": row, "col": col, "by": {"id": user.pk, "name": user.username}, "rev": rev, "value": value}


class OverwrittenTest:
    def test_set_against_older_rev_reports_cells_someone_else_wrote_since(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor")
        apply(workbook_id, ada, put((1, 1, "ada's"), op="a1"))
        apply(workbook_id, bob, put((1, 1, "bob's"), (2, 2, 5), op="b1"))

        change = apply(workbook_id, ada, based(1, (1, 1, "ada again"), (2, 2, 6), (3, 1, "untouched by bob"), op="a2")).change

        assert change.data["overwritten"] == [overwrite(1, 1, bob, 2, "bob's"), overwrite(2, 2, bob, 2, 5)]
        assert values(workbook_id)[1] == ["ada again", None]
        assert selectors.changes_since(workbook_id=workbook_id, since=2).changes[0].data["overwritten"] == change.data["overwritten"]

    def test_set_of_cells_last_written_by_the_sender_or_before_its_rev_reports_nothing(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor")
        apply(workbook_id, bob, put((1, 1, "bob's"), op="b1"))
        apply(workbook_id, bob, put((2, 1, "bob's too"), op="b2"))
        apply(workbook_id, ada, put((2, 1, "ada's"), op="a1"))

        change = apply(workbook_id, ada, based(2, (1, 1, "x"), (2, 1, "y"), op="a2")).change

        assert change.data["overwritten"] == []

    def test_set_writing_the_value_already_there_replaces_nothing(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor")
        apply(workbook_id, bob, put((1, 1, "same"), (1, 2, 1), op="b1"))

        change = apply(workbook_id, ada, based(0, (1, 1, "same"), (1, 2, True), op="a1")).change

        assert change.data["overwritten"] == [overwrite(1, 2, bob, 1, 1)]

    def test_set_without_rev_reports_nothing(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor")
        apply(workbook_id, bob, put((1, 1, "bob's"), op="b1"))

        assert apply(workbook_id, ada, put((1, 1, "x"), op="a1")).change.data["overwritten"] == []

    def test_set_with_rev_ahead_of_the_workbook_invalid_nothing_changes(self, ada, workbook_id):
        apply(workbook_id, ada, put((1, 1, "x"), op="a1"))

        with pytest.raises(Invalid, match="ahead"):
            apply(workbook_id, ada, based(2, (1, 1, "y"), op="a2"))

        assert values(workbook_id)[1] == ["x", None]
        assert Workbook.objects.get(pk=workbook_id).rev == 1

    def test_concurrent_sets_in_one_batch_the_later_is_told_what_it_replaced(self, ada, workbook_id):
        bob = user_with_role(workbook_id, "editor")
        apply(workbook_id, ada, put((3, 2, "start"), op="a0"))

        first, second = services.commit_sets(
            workbook_id=workbook_id, requests=[(ada, based(1, (1, 1, "ada's"), op="a1")), (bob, based(1, (1, 1, "bob's"), op="b1"))]
        )

        assert first.change.data["overwritten"] == []
        assert second.change.data["overwritten"] == [overwrite(1, 1, ada, 2, "ada's")]

    def test_writes_older_than_the_sync_window_are_not_read(self, settings, ada, workbook_id):
        limits(settings, max_sync_changes=2)
        bob = user_with_role(workbook_id, "editor")
        apply(workbook_id, bob, put((1, 1, "old"), op="b1"))
        apply(workbook_id, bob, put((2, 1, "recent"), op="b2"))
        apply(workbook_id, bob, put((3, 1, "latest"), op="b3"))

        change = apply(workbook_id, ada, based(0, (1, 1, "x"), (2, 1, "y"), (3, 1, "z"), op="a1")).change

        assert change.data["overwritten"] == [overwrite(2, 1, bob, 2, "recent"), overwrite(3, 1, bob, 3, "latest")]


OVERWRITE_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import services
from workbooks.domain.values import CellWrite, InsertCols, SetCells
from workbooks.models import Member

users = get_user_model().objects
ada, bob = (users.create_user(username=n, password="unused-pw") for n in ("ada", "bob"))
workbook_id = services.create_workbook(user=ada, name="Offline", rows=2, cols=2).id
Member.objects.create(workbook_id=workbook_id, user=bob, role="editor")
services.commit_operation(workbook_id=workbook_id, user=bob, operation=SetCells("b1", (CellWrite(1, 2, "bob's"), CellWrite(2, 1, 'x "y"'))))
services.commit_operation(workbook_id=workbook_id, user=bob, operation=InsertCols("b2", 1, 1))
results = services.commit_sets(workbook_id=workbook_id, requests=[
    (ada, SetCells("a1", (CellWrite(1, 2, "ada's"), CellWrite(2, 1, "ada's"), CellWrite(2, 2, "new")), 0)),
    (bob, SetCells("b3", (CellWrite(2, 2, "bob's"),), 2)),
])
print(json.dumps([r.change.data["overwritten"] for r in results]))
"""


class OverwrittenAcrossDatabasesTest:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"])
    def test_a_replayed_set_is_told_what_it_replaced(self, database, request, tmp_path):
        result = support.scenario_result(database, request, tmp_path, OVERWRITE_SCENARIO)

        by_bob = {"id": 2, "name": "bob"}
        assert result == [
            [{"row": 1, "col": 2, "by": by_bob, "rev": 1, "value": "bob's"}, {"row": 2, "col": 1, "by": by_bob, "rev": 1, "value": 'x "y"'}],
            [{"row": 2, "col": 2, "by": {"id": 1, "name": "ada"}, "rev": 3, "value": "new"}],
        ]


class CommitSetsAcrossDatabasesTest:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"])
    def test_a_batch_with_every_outcome(self, database, request, tmp_path):
        result = support.scenario_result(database, request, tmp_path, SETS_SCENARIO)
        tricky = result["tricky"]
        assert '"' in tricky and "\\" in tricky and "\U0001f600" in tricky
        assert result["results"] == [[3, "a", False], "Forbidden", "NotFound", [1, "before", True], "NotFound", [3, "a", True], [4, "b", False]]
        owner = result["owner"]
        assert result["log"] == [
            [
                3,
                "a",
                owner,
                "owner",
                {"sheet": 1, "cells": [{"row": 1, "col": 1, "value": tricky}, {"row": 2, "col": 2, "value": 7}], "overwritten": []},
            ],
            [
                4,
                "b",
                owner,
                "owner",
                {"sheet": 1, "cells": [{"row": 2, "col": 1, "value": None}, {"row": 1, "col": 2, "value": False}], "overwritten": []},
            ],
        ]
        assert result["stored"] == [[tricky, False], [None, 7], []]  # row 3 deleted (a tombstone), "dropped" not written


# commit_sets' transaction ends however the batch does: nothing to write, no such workbook, or a write
# the database refuses (then nothing of the batch stays). On PostgreSQL commit_sets sends BEGIN and
# COMMIT itself; a second connection then finds the workbook unlocked.
TRANSACTION_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection, connections
from workbooks import services
from workbooks.services import store
from workbooks.domain.values import CellWrite, SetCells
from workbooks.models import Change, Workbook

users = get_user_model().objects
owner, stranger = (users.create_user(username=n, password="unused-pw") for n in ("owner", "stranger"))
workbook_id = services.create_workbook(user=owner, name="Tx", rows=2, cols=2).id
ended = []

def batch(user, op, value, workbook=workbook_id):
    results = services.commit_sets(workbook_id=workbook, requests=[(user, SetCells(op, (CellWrite(1, 1, value),)))])
    if connection.vendor == "postgresql":
        other = connections.create_connection("default")
        with other.cursor() as cursor:  # fails at once if the workbook were still locked
            cursor.execute("SELECT id FROM workbooks_workbook WHERE id = %s FOR UPDATE NOWAIT", [workbook])
        other.close()
        ended.append(connection.connection.info.transaction_status.name)
    return [type(r).__name__ if isinstance(r, Exception) else r.change.rev for r in results]

write_batch = store.write_batch
def refused(cursor, workbook_id, **kwargs):
    write_batch(cursor, workbook_id, **kwargs)
    cursor.execute("SELECT * FROM no_such_table")

outcomes = {"stranger": batch(stranger, "s", "no")}
store.write_batch = refused
try:
    batch(owner, "refused", "lost")
except Exception as exc:
    outcomes["refused"] = type(exc).__name__
store.write_batch = write_batch
outcomes["after"] = batch(owner, "after", "kept")
if connection.vendor == "postgresql":  # the server ends the connection between two batches
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    other.close()
    try:
        batch(owner, "lost", "lost")
    except Exception as exc:
        outcomes["lost"] = type(exc).__name__
    outcomes["reconnected"] = batch(owner, "again", "kept")
outcomes["missing"] = batch(owner, "m", "no", workbook=10**9)
print(json.dumps({
    "outcomes": outcomes,
    "ended": ended,
    "rev": Workbook.objects.get(pk=workbook_id).rev,
    "log": list(Change.objects.filter(workbook_id=workbook_id).values_list("op", flat=True)),
}))
"""


class CommitSetsTransactionTest:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"])
    def test_every_way_a_batch_ends_leaves_no_transaction_behind(self, database, request, tmp_path):
        result = support.scenario_result(database, request, tmp_path, TRANSACTION_SCENARIO)
        if database == "sqlite":
            assert result["outcomes"] == {"stranger": ["NotFound"], "refused": "OperationalError", "after": [1], "missing": ["NotFound"]}
            assert (result["rev"], result["log"], result["ended"]) == (1, ["after"], [])
        else:  # and a batch on a connection the server ended fails, and the next one connects afresh
            assert result["outcomes"] == {
                "stranger": ["NotFound"],
                "refused": "ProgrammingError",  # Django's, whether psycopg's cursor or its pipeline saw it
                "after": [1],
                "lost": "OperationalError",
                "reconnected": [2],
                "missing": ["NotFound"],
            }
            assert (result["rev"], result["log"], result["ended"]) == (2, ["after", "again"], ["IDLE"] * 4)


PREPARED_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from workbooks import services
from workbooks.domain.values import CellWrite, SetCells

user = get_user_model().objects.create_user(username="prep", password="unused-pw")
workbook_id = services.create_workbook(user=user, name="Prepared", rows=2, cols=2).id
with connection.cursor() as cursor:  # as if PostgreSQL had settled on generic plans
    cursor.execute("SET plan_cache_mode = force_generic_plan")
for n in range(8):
    services.commit_sets(workbook_id=workbook_id, requests=[(user, SetCells(f"p{n}", (CellWrite(1, 1, n),)))])
with connection.cursor() as cursor:  # utility statements have no plan of their own to count
    cursor.execute("SELECT statement, generic_plans FROM pg_prepared_statements")
    print(json.dumps(sorted(s.split()[0] + (" generic" * (g > 0 and s.split()[0] in ("SELECT", "INSERT", "UPDATE"))) for s, g in cursor.fetchall())))
"""


class PreparedStatementsTest:
    @pytest.mark.parametrize(
        ("setting", "prepared"), [("on", ["BEGIN", "COMMIT", "INSERT", "INSERT", "SELECT", "SELECT", "SET", "UPDATE", "UPDATE"]), ("off", [])]
    )
    def test_the_edits_statements_are_prepared_and_planned_for_their_parameters(self, setting, prepared, request, tmp_path):
        settings = {"DATABASE_PREPARED_STATEMENTS": setting, "DATABASE_CONN_MAX_AGE": 60}
        assert support.scenario_result("postgresql", request, tmp_path, PREPARED_SCENARIO, **settings) == prepared
