"""Reads against the database: value types out."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from model_bakery import baker

from tests import support
from workbooks import selectors, services
from workbooks.domain.values import CellWrite, Column, DeleteCols, DeleteRows, InsertCols, InsertRows, Rename, SetCells
from workbooks.models import Member, Workbook

pytestmark = pytest.mark.django_db


@pytest.fixture
def workbook_id(ada):
    """A workbook owned by ada with rows 1-2 and columns 1-3."""
    return services.create_workbook(user=ada, name="Budget", rows=2, cols=3).id


def commit(workbook_id, user, operation):
    return services.commit_operation(workbook_id=workbook_id, user=user, operation=operation).change


def put(*cells, op):
    return SetCells(op, tuple(CellWrite(*c) for c in cells))


class SnapshotTest:
    def test_snapshot_new_workbook_titles_and_empty_cells(self, workbook_id):
        snap = selectors.snapshot(workbook_id=workbook_id, role="editor")
        assert (snap.id, snap.name, snap.rev, snap.role) == (workbook_id, "Budget", 0, "editor")
        assert snap.sheets[0].columns == (Column(1, "A"), Column(2, "B"), Column(3, "C"))
        assert snap.sheets[0].rows == ((1, (None, None, None)), (2, (None, None, None)))

    def test_snapshot_values_in_column_order_null_for_empty(self, ada, workbook_id):
        commit(workbook_id, ada, put((1, 3, "c"), (1, 1, 1), (2, 2, False), op="s"))
        snap = selectors.snapshot(workbook_id=workbook_id, role="owner")
        assert snap.rev == 1
        assert snap.sheets[0].rows == ((1, (1, None, "c")), (2, (None, False, None)))

    def test_snapshot_after_column_insert_new_column_empty_titles_follow_position(self, ada, workbook_id):
        commit(workbook_id, ada, put((1, 1, "a"), (1, 2, "b"), op="s"))
        commit(workbook_id, ada, InsertCols("i", 2, 1))
        snap = selectors.snapshot(workbook_id=workbook_id, role="owner")
        assert snap.sheets[0].columns == (Column(1, "A"), Column(4, "B"), Column(2, "C"), Column(3, "D"))
        assert snap.sheets[0].rows[0] == (1, ("a", None, "b", None))

    def test_snapshot_after_column_delete_values_shift_left(self, ada, workbook_id):
        commit(workbook_id, ada, put((1, 1, "a"), (1, 2, "b"), (1, 3, "c"), op="s"))
        commit(workbook_id, ada, DeleteCols("d", (2,)))
        snap = selectors.snapshot(workbook_id=workbook_id, role="owner")
        assert snap.sheets[0].columns == (Column(1, "A"), Column(3, "B"))
        assert snap.sheets[0].rows == ((1, ("a", "c")), (2, (None, None)))

    def test_snapshot_after_row_insert_and_delete_rows_in_order(self, ada, workbook_id):
        commit(workbook_id, ada, InsertRows("i", 1, 2))
        commit(workbook_id, ada, DeleteRows("d", (3,)))
        commit(workbook_id, ada, put((4, 1, "x"), op="s"))
        snap = selectors.snapshot(workbook_id=workbook_id, role="owner")
        assert [row_id for row_id, _ in snap.sheets[0].rows] == [4, 1, 2]
        assert snap.sheets[0].rows[0] == (4, ("x", None, None))
        assert snap.rev == 3

    def test_snapshot_after_rename_new_name(self, ada, workbook_id):
        commit(workbook_id, ada, Rename("r", "Plan"))
        assert selectors.snapshot(workbook_id=workbook_id, role="owner").name == "Plan"


class ChangesSinceTest:
    def test_changes_since_zero_every_change_in_order(self, ada, workbook_id):
        made = [commit(workbook_id, ada, put((1, 1, i), op=f"o{i}")) for i in range(3)]
        found = selectors.changes_since(workbook_id=workbook_id, since=0)
        assert found.rev == 3
        assert found.changes == tuple(made)

    def test_changes_since_r_only_later_changes(self, ada, workbook_id):
        made = [commit(workbook_id, ada, put((1, 1, i), op=f"o{i}")) for i in range(4)]
        found = selectors.changes_since(workbook_id=workbook_id, since=2)
        assert [c.rev for c in found.changes] == [3, 4]
        assert found.changes == tuple(made[2:])

    def test_changes_since_current_rev_empty(self, ada, workbook_id):
        commit(workbook_id, ada, Rename("r", "N"))
        found = selectors.changes_since(workbook_id=workbook_id, since=1)
        assert (found.rev, found.changes) == (1, ())

    def test_changes_since_author_and_time_kept(self, ada, workbook_id):
        now = datetime(2024, 5, 6, tzinfo=UTC)
        services.commit_operation(workbook_id=workbook_id, user=ada, operation=Rename("r", "N"), now=now)
        (change,) = selectors.changes_since(workbook_id=workbook_id, since=0).changes
        assert (change.by.id, change.by.name, change.at, change.kind, change.data) == (ada.pk, "ada", now, "rename", {"name": "N"})

    def test_changes_since_author_deleted_name_kept(self, ada, workbook_id):
        bob = baker.make(get_user_model(), username="bob")
        baker.make(Member, workbook_id=workbook_id, user=bob, role="editor")
        commit(workbook_id, bob, Rename("r", "N"))
        bob.delete()
        (change,) = selectors.changes_since(workbook_id=workbook_id, since=0).changes
        assert (change.by.id, change.by.name) == (0, "bob")

    def test_changes_since_below_history_floor_truncated(self, ada, workbook_id):
        for i in range(5):
            commit(workbook_id, ada, put((1, 1, i), op=f"o{i}"))
        Workbook.objects.filter(pk=workbook_id).update(history_floor=3)
        with pytest.raises(selectors.HistoryTruncated):
            selectors.changes_since(workbook_id=workbook_id, since=2)
        assert [c.rev for c in selectors.changes_since(workbook_id=workbook_id, since=3).changes] == [4, 5]

    def test_changes_since_ahead_of_workbook_truncated(self, ada, workbook_id):
        commit(workbook_id, ada, Rename("r", "N"))
        with pytest.raises(selectors.HistoryTruncated):
            selectors.changes_since(workbook_id=workbook_id, since=2)

    def test_changes_since_more_than_limit_truncated(self, ada, workbook_id):
        for i in range(4):
            commit(workbook_id, ada, put((1, 1, i), op=f"o{i}"))
        assert len(selectors.changes_since(workbook_id=workbook_id, since=1, limit=3).changes) == 3
        with pytest.raises(selectors.HistoryTruncated, match="more than 3"):
            selectors.changes_since(workbook_id=workbook_id, since=0, limit=3)

    def test_changes_since_workbook_gone_truncated(self, workbook_id):
        with pytest.raises(selectors.HistoryTruncated):
            selectors.changes_since(workbook_id=workbook_id + 1000, since=0)


class RoleOfTest:
    @pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
    def test_role_of_member_their_role(self, role):
        member = baker.make(Member, role=role)
        assert selectors.role_of(user=member.user, workbook_id=member.workbook_id) == role

    def test_role_of_no_membership_none(self, workbook_id):
        assert selectors.role_of(user=baker.make(get_user_model()), workbook_id=workbook_id) is None

    def test_role_of_role_on_other_workbook_none(self, ada, workbook_id):
        other = baker.make(Workbook)
        assert selectors.role_of(user=ada, workbook_id=other.pk) is None

    def test_role_of_anonymous_none(self, workbook_id):
        assert selectors.role_of(user=AnonymousUser(), workbook_id=workbook_id) is None

    def test_role_of_missing_workbook_none(self, ada, workbook_id):
        assert selectors.role_of(user=ada, workbook_id=workbook_id + 1000) is None


class WorkbooksForTest:
    def test_workbooks_for_only_my_workbooks_with_my_role_latest_first(self, ada):
        now = datetime(2025, 1, 1, tzinfo=UTC)
        older = baker.make(Member, user=ada, role="viewer", workbook__name="Older", workbook__rev=4).workbook
        newer = baker.make(Member, user=ada, role="editor", workbook__name="Newer").workbook
        baker.make(Member, role="owner", workbook__name="Not mine")
        Workbook.objects.filter(pk=older.pk).update(updated_at=now - timedelta(days=1))
        Workbook.objects.filter(pk=newer.pk).update(updated_at=now)
        summaries = selectors.workbooks_for(user=ada)
        assert [(s.id, s.name, s.rev, s.role, s.updated_at) for s in summaries] == [
            (newer.pk, "Newer", 0, "editor", now),
            (older.pk, "Older", 4, "viewer", now - timedelta(days=1)),
        ]

    def test_workbooks_for_at_most_the_listed_limit_latest_first(self, ada, monkeypatch):
        monkeypatch.setattr(selectors, "MAX_LISTED_WORKBOOKS", 2)
        ids = [services.create_workbook(user=ada, name=f"S{i}", rows=1, cols=1).id for i in range(3)]
        Workbook.objects.filter(pk=ids[0]).update(updated_at=Workbook.objects.get(pk=ids[2]).updated_at + timedelta(hours=1))
        assert [s.id for s in selectors.workbooks_for(user=ada)] == [ids[0], ids[2]]

    def test_workbooks_for_no_roles_empty(self, workbook_id):
        assert selectors.workbooks_for(user=baker.make(get_user_model())) == []


class MembersTest:
    def test_members_owner_first_then_editors_then_viewers_by_name(self, ada, workbook_id):
        for username, role in [("zed", "editor"), ("bob", "viewer"), ("amy", "viewer"), ("cy", "editor")]:
            baker.make(Member, workbook_id=workbook_id, user__username=username, role=role)
        assert selectors.members(workbook_id=workbook_id) == [
            ("ada", "owner"),
            ("cy", "editor"),
            ("zed", "editor"),
            ("amy", "viewer"),
            ("bob", "viewer"),
        ]

    def test_members_other_workbooks_not_listed(self, ada, workbook_id):
        baker.make(Member, user__username="eve", role="editor")
        assert selectors.members(workbook_id=workbook_id) == [("ada", "owner")]


class WorkbookNameTest:
    def test_workbook_name_current_name(self, ada, workbook_id):
        commit(workbook_id, ada, Rename("r", "Renamed"))
        assert selectors.workbook_name(workbook_id=workbook_id) == "Renamed"


class WorkbookRevTest:
    def test_workbook_rev_current_rev_or_none_when_missing(self, ada, workbook_id):
        commit(workbook_id, ada, Rename("r", "N"))
        assert selectors.workbook_rev(workbook_id=workbook_id) == 1
        assert selectors.workbook_rev(workbook_id=workbook_id + 1000) is None


# The test database is SQLite; these reads are checked once more in a real PostgreSQL database,
# where the snapshot's isolation level is set (and must not be set inside a caller's transaction).
POSTGRES_READS = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import transaction
from workbooks import selectors, services
from workbooks.domain.values import CellWrite, SetCells

user = get_user_model().objects.create_user(username="reader", password="unused-pw")
workbook_id = services.create_workbook(user=user, name="S", rows=2, cols=2).id
services.commit_operation(workbook_id=workbook_id, user=user, operation=SetCells("s", (CellWrite(2, 1, "x"),)))
alone = selectors.snapshot(workbook_id=workbook_id, role="owner")
with transaction.atomic():
    inside = selectors.snapshot(workbook_id=workbook_id, role="owner")
    changes = selectors.changes_since(workbook_id=workbook_id, since=0)
print(json.dumps([list(alone.sheets[0].rows), list(inside.sheets[0].rows), [c.rev for c in changes.changes]]))
"""


@pytest.mark.processes
class ConsistentReadTest:
    def test_consistent_read_postgresql_alone_and_inside_callers_transaction(self, postgres, tmp_path):
        with postgres.database(prefix="tabula_readtest") as url:
            env = support.app_env(database_url=url, var_dir=tmp_path)
            support.manage(env, "migrate", "--noinput")
            result = subprocess.run([sys.executable, "-c", POSTGRES_READS], cwd=support.ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        alone, inside, revs = json.loads(result.stdout)
        assert alone == inside == [[1, [None, None]], [2, ["x", None]]]
        assert revs == [1]
