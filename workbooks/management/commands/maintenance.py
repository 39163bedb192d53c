"""The periodic upkeep, run for ever by supervisor (tabula-maintenance): expired sessions and old changes."""

import datetime
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

logger = logging.getLogger("tabula.maintenance")


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[], str]  # returns what the task reports, for the log


def management_command(name: str, **options) -> Callable[[], str]:
    def run() -> str:
        out = io.StringIO()
        call_command(name, stdout=out, **options)
        return out.getvalue().strip()

    return run


def upkeep(*, keep_changes: int) -> list[Task]:
    return [
        Task("clearsessions", management_command("clearsessions")),
        Task("prune_changes", management_command("prune_changes", keep=keep_changes)),
    ]


def run_tasks(tasks: list[Task]) -> int:
    """Runs every task even when one fails (its traceback is logged); returns how many failed."""
    failed = 0
    # The log has no timestamps of its own (supervisor writes the output as it comes).
    logger.info("run at %s", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    for task in tasks:
        started = time.monotonic()
        try:
            report = task.run()
        except Exception:
            failed += 1
            logger.exception("%s failed after %.1f s", task.name, time.monotonic() - started)
        else:
            logger.info("%s: %s (%.1f s)", task.name, report or "done", time.monotonic() - started)
    # An hour asleep would outlive the connection's welcome (and PostgreSQL may restart meanwhile).
    connections.close_all()
    return failed


class Command(BaseCommand):
    help = (
        "Every TABULA_MAINTENANCE_SECONDS (an hour), delete expired sessions (clearsessions) and all but "
        "the newest TABULA_KEEP_CHANGES changes of each workbook (prune_changes). A failed run is logged and "
        "the next one comes as usual."
    )
    sleep = staticmethod(time.sleep)

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=settings.TABULA_MAINTENANCE_SECONDS, help="seconds between runs")
        parser.add_argument("--keep-changes", type=int, default=settings.TABULA_KEEP_CHANGES, help="changes kept per workbook")
        parser.add_argument("--once", action="store_true", help="run once and exit, with status 1 if a task failed")

    def handle(self, *args, every, keep_changes, once, **options):
        if every < 1:
            raise CommandError("--every must be 1 second or more")
        if keep_changes < 0:
            raise CommandError("--keep-changes must be 0 or more")
        tasks = upkeep(keep_changes=keep_changes)
        if once:
            failed = run_tasks(tasks)
            if failed:
                raise CommandError(f"{failed} of {len(tasks)} tasks failed")
            return
        logger.info("maintenance every %d s, keeping %d changes per workbook", every, keep_changes)
        while True:
            run_tasks(tasks)
            self.sleep(every)
