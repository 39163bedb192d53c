"""The management commands: seed_demo and prune_changes, run as an operator runs them."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from model_bakery import baker

from workbooks import selectors, services
from workbooks.domain.values import CellWrite, DeleteCols, DeleteRows, InsertCols, Rename, SetCells
from workbooks.management.commands.seed_demo import DEMO_ROWS
from workbooks.models import CellEdit, Change, Column, Member, Row, Workbook
from workbooks.services import store

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


class SeedDemoTest:
    def test_seed_demo_creates_user_and_workbook_with_values(self):
        out = run("seed_demo", username="demo", password="demo-password-1")
        assert "Demo user: demo / password: demo-password-1" in out
        user = get_user_model().objects.get(username="demo")
        assert user.check_password("demo-password-1")
        member = Member.objects.get(user=user)
        assert member.role == "owner"
        snap = selectors.snapshot(workbook_id=member.workbook_id, role="owner")
        assert (snap.name, snap.rev) == ("Demo workbook", 1)
        assert len(snap.sheets[0].rows) == 100 and len(snap.sheets[0].columns) == 26
        for (_, values), expected in zip(snap.sheets[0].rows, DEMO_ROWS, strict=False):
            assert list(values[: len(expected)]) == expected
        assert snap.sheets[0].rows[len(DEMO_ROWS)][1] == (None,) * 26

    def test_seed_demo_again_idempotent_password_unchanged(self):
        run("seed_demo", username="demo", password="demo-password-1")
        out = run("seed_demo", username="demo", password="another-password")
        assert "exists; password unchanged" in out
        user = get_user_model().objects.get(username="demo")
        assert user.check_password("demo-password-1")
        assert Workbook.objects.count() == 1
        assert Change.objects.count() == 1

    def test_seed_demo_existing_user_with_workbooks_untouched(self):
        user = baker.make(get_user_model(), username="demo")
        services.create_workbook(user=user, name="Mine", rows=1, cols=1)
        run("seed_demo", username="demo", password="demo-password-1")
        assert list(Workbook.objects.values_list("name", flat=True)) == ["Mine"]


class PruneChangesTest:
    @pytest.fixture
    def workbook_id(self):
        user = baker.make(get_user_model())
        workbook_id = services.create_workbook(user=user, name="S", rows=1, cols=1).id
        for i in range(5):
            services.commit_operation(workbook_id=workbook_id, user=user, operation=Rename(f"r{i}", f"N{i}"))
        return workbook_id

    def test_prune_changes_keeps_newest_and_raises_floor(self, workbook_id):
        assert run("prune_changes", keep=2).strip() == "deleted 3 changes"
        assert list(Change.objects.filter(workbook_id=workbook_id).order_by("rev").values_list("rev", flat=True)) == [4, 5]
        assert Workbook.objects.get(pk=workbook_id).history_floor == 3
        with pytest.raises(selectors.HistoryTruncated):
            selectors.changes_since(workbook_id=workbook_id, since=2)
        assert [c.rev for c in selectors.changes_since(workbook_id=workbook_id, since=3).changes] == [4, 5]

    def test_prune_changes_keep_more_than_exist_nothing_deleted(self, workbook_id):
        assert run("prune_changes", keep=10).strip() == "deleted 0 changes"
        assert Workbook.objects.get(pk=workbook_id).history_floor == 0

    def test_prune_changes_one_workbook_others_kept(self, workbook_id):
        other = services.create_workbook(user=baker.make(get_user_model()), name="O", rows=1, cols=1).id
        services.commit_operation(workbook_id=other, user=Member.objects.get(workbook_id=other).user, operation=Rename("r", "O2"))
        run("prune_changes", keep=0, workbook=workbook_id)
        assert not Change.objects.filter(workbook_id=workbook_id).exists()
        assert Change.objects.filter(workbook_id=other).count() == 1

    def test_prune_changes_negative_keep_refused(self, workbook_id):
        with pytest.raises(CommandError):
            run("prune_changes", keep=-1)
        assert Change.objects.filter(workbook_id=workbook_id).count() == 5

    def test_prune_changes_drops_tombstones_it_no_longer_needs_and_their_cells(self, monkeypatch):
        monkeypatch.setattr(store, "ROWS_PER_UPDATE", 2)  # the cells are emptied a chunk of rows at a time
        user = baker.make(get_user_model())
        workbook_id = services.create_workbook(user=user, name="T", rows=5, cols=3).id

        def commit(operation):
            return services.commit_operation(workbook_id=workbook_id, user=user, operation=operation).change.rev

        commit(SetCells("s", tuple(CellWrite(r, c, f"{r}.{c}") for r in range(1, 6) for c in (1, 2, 3))))
        commit(DeleteCols("old col", (2,)))
        commit(DeleteRows("old row", (1,)))
        floor = commit(Rename("r", "T2"))
        commit(DeleteCols("new col", (3,)))
        commit(DeleteRows("new row", (2,)))
        run("prune_changes", keep=2, workbook=workbook_id)
        assert Workbook.objects.get(pk=workbook_id).history_floor == floor
        # What the kept changes deleted stays (an undo may bring it back); the rest is gone for good.
        assert sorted(Row.objects.filter(workbook_id=workbook_id).values_list("rid", flat=True)) == [2, 3, 4, 5]
        assert sorted(Column.objects.filter(workbook_id=workbook_id).values_list("cid", flat=True)) == [1, 3]
        assert not CellEdit.objects.filter(workbook_id=workbook_id, rev__lte=floor).exists()  # the cells' history goes with the log
        stored = dict(Row.objects.filter(workbook_id=workbook_id).values_list("rid", "values"))
        assert stored == {r: [f"{r}.1", None, f"{r}.3"] for r in range(2, 6)}
        # The freed slot goes to the next new column, which starts empty.
        new = services.commit_operation(workbook_id=workbook_id, user=user, operation=InsertCols("i", None, 1)).change.data["cols"]
        assert Column.objects.get(workbook_id=workbook_id, cid=new[0]).slot == 1
        assert [values for _, values in selectors.snapshot(workbook_id=workbook_id, role="owner").sheets[0].rows] == [
            (f"{r}.1", None) for r in range(3, 6)
        ]
