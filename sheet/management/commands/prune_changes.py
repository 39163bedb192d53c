"""Drops old entries of the change log, keeping the newest ones of every sheet, and the deleted rows
and columns (tombstones) that only those entries could have brought back."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sheet.models import CellEdit, Change, Column, Refusal, Row, Sheet
from sheet.services import store


class Command(BaseCommand):
    help = (
        "Keep only the newest KEEP changes of each sheet. Clients asking for older ones get "
        "410 history_truncated (HTTP) or reload (socket) and fetch a fresh snapshot. Rows and "
        "columns deleted by the changes dropped are removed for good, with their cells."
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
                CellEdit.objects.filter(sheet=locked, rev__lte=floor).delete()
                Refusal.objects.filter(sheet=locked, rev__lt=floor).delete()
                Sheet.objects.filter(pk=sheet_id).update(history_floor=floor)
                Row.objects.filter(sheet=locked, deleted_rev__lte=floor).delete()
            total += deleted
            self.drop_columns(sheet_id, floor)
        self.stdout.write(f"deleted {total} changes")

    def drop_columns(self, sheet_id: int, floor: int) -> None:
        """Columns deleted at or below the floor: their cells are emptied first, outside the sheet's
        lock (a 100,000-row sheet's rows take a while, and no edit can reach those cells), then the
        records go, which frees their slots for new columns."""
        gone = Column.objects.filter(sheet_id=sheet_id, deleted_rev__lte=floor)
        slots = list(gone.values_list("slot", flat=True))
        if slots:
            store.clear_slots(sheet_id, slots)
            gone.delete()
