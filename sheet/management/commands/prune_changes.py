"""Drops old entries of the change log, keeping the newest ones of every sheet."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sheet.models import Change, Sheet


class Command(BaseCommand):
    help = (
        "Keep only the newest KEEP changes of each sheet. Clients asking for older ones get "
        "410 history_truncated (HTTP) or reload (socket) and fetch a fresh snapshot."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep", type=int, required=True, help="changes to keep per sheet")
        parser.add_argument("--sheet", type=int, help="only this sheet")

    def handle(self, *args, keep, sheet=None, **options):
        if keep < 0:
            raise CommandError("--keep must be 0 or more")
        sheets = Sheet.objects.all() if sheet is None else Sheet.objects.filter(pk=sheet)
        total = 0
        for sheet_id in sheets.values_list("pk", flat=True):
            with transaction.atomic():
                locked = Sheet.objects.select_for_update().get(pk=sheet_id)
                floor = max(locked.history_floor, locked.rev - keep)
                deleted, _ = Change.objects.filter(sheet=locked, rev__lte=floor).delete()
                Sheet.objects.filter(pk=sheet_id).update(history_floor=floor)
            total += deleted
        self.stdout.write(f"deleted {total} changes")
