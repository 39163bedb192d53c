"""The maintenance command that supervisor runs for ever (tabula-maintenance): sessions and the change log."""

import datetime
import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.utils import timezone
from model_bakery import baker

from workbooks import services
from workbooks.domain.values import Rename
from workbooks.management.commands import maintenance
from workbooks.models import Change

pytestmark = pytest.mark.django_db


class Stop(Exception):
    """Ends the endless loop from the test's sleep."""


@pytest.fixture
def workbook_id():
    user = baker.make(get_user_model())
    workbook_id = services.create_workbook(user=user, name="S", rows=1, cols=1).id
    for i in range(5):
        services.commit_operation(workbook_id=workbook_id, user=user, operation=Rename(f"r{i}", f"N{i}"))
    return workbook_id


def make_session(key: str, *, expires_in: datetime.timedelta) -> None:
    Session.objects.create(session_key=key, session_data="", expire_date=timezone.now() + expires_in)


def kept_revs(workbook_id) -> list[int]:
    return list(Change.objects.filter(workbook_id=workbook_id).order_by("rev").values_list("rev", flat=True))


class MaintenanceTest:
    def test_maintenance_once_expired_sessions_deleted_old_changes_pruned_and_logged(self, workbook_id, caplog):
        make_session("expired", expires_in=-datetime.timedelta(minutes=1))
        make_session("live", expires_in=datetime.timedelta(days=1))
        with caplog.at_level(logging.INFO, logger="tabula.maintenance"):
            call_command("maintenance", once=True, keep_changes=2)
        assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]
        assert kept_revs(workbook_id) == [4, 5]
        logged = [record.getMessage() for record in caplog.records]
        assert logged[0].startswith("run at 20")
        assert [line.split(" (")[0] for line in logged[1:]] == ["clearsessions: done", "prune_changes: deleted 3 changes"]

    def test_maintenance_forever_failed_task_logged_other_task_and_next_run_still_done(self, workbook_id, caplog, monkeypatch):
        make_session("expired", expires_in=-datetime.timedelta(minutes=1))
        calls = []

        def call_command_failing_once(name, **options):
            calls.append(name)
            if calls == ["clearsessions"]:
                raise RuntimeError("the database went away")
            return call_command(name, **options)

        monkeypatch.setattr(maintenance, "call_command", call_command_failing_once)
        sleeps = []

        def sleep(seconds):
            sleeps.append(seconds)
            if len(sleeps) == 2:
                raise Stop

        command = maintenance.Command()
        command.sleep = sleep
        with caplog.at_level(logging.INFO, logger="tabula.maintenance"), pytest.raises(Stop):
            call_command(command, every=600, keep_changes=1)
        assert calls == ["clearsessions", "prune_changes", "clearsessions", "prune_changes"]
        assert sleeps == [600, 600]
        assert not Session.objects.exists()
        assert kept_revs(workbook_id) == [5]
        failure = next(record for record in caplog.records if record.levelno == logging.ERROR)
        assert failure.getMessage().startswith("clearsessions failed")
        assert "the database went away" in caplog.text

    def test_maintenance_once_task_failed_exit_status_nonzero(self, workbook_id, monkeypatch):
        def call_command_failing(name, **options):
            raise RuntimeError("no")

        monkeypatch.setattr(maintenance, "call_command", call_command_failing)
        with pytest.raises(CommandError, match="2 of 2 tasks failed"):
            call_command("maintenance", once=True)

    @pytest.mark.parametrize(("option", "value"), [("every", 0), ("keep_changes", -1)])
    def test_maintenance_out_of_range_option_refused_nothing_deleted(self, workbook_id, option, value):
        with pytest.raises(CommandError):
            call_command("maintenance", once=True, **{option: value})
        assert kept_revs(workbook_id) == [1, 2, 3, 4, 5]
