"""Drops old entries of the change log, keeping the newest ones of every workbook, and the deleted
sheets, rows and columns (tombstones) that only those entries could have brought back."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workbooks.models import CellEdit, Change, Column, Refusal, Row, Sheet, Workbook
from workbooks.services import store


class Command(BaseCommand):
    help = (
        "Keep only the newest KEEP changes of each workbook. Clients asking for older ones get "
        "410 history_truncated (HTTP) or reload (socket) and fetch a fresh snapshot. Rows and "
        "columns deleted by the changes dropped are removed for good, with their cells."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep", type=int, required=True, help="changes to keep per workbook")
        parser.add_argument("--workbook", type=int, help="only this workbook")

    def handle(self, *args, keep, workbook=None, **options):
        if keep < 0:
            raise CommandError("--keep must be 0 or more")
        workbooks = Workbook.objects.all() if workbook is None else Workbook.objects.filter(pk=workbook)
        total = 0
        for workbook_id in workbooks.values_list("pk", flat=True):
            with transaction.atomic():
                locked = Workbook.objects.select_for_update().get(pk=workbook_id)
                floor = max(locked.history_floor, locked.rev - keep)
                deleted, _ = Change.objects.filter(workbook=locked, rev__lte=floor).delete()
                CellEdit.objects.filter(workbook=locked, rev__lte=floor).delete()
                Refusal.objects.filter(workbook=locked, rev__lt=floor).delete()
                Workbook.objects.filter(pk=workbook_id).update(history_floor=floor)
                Row.objects.filter(workbook=locked, deleted_rev__lte=floor).delete()
                gone = list(Sheet.objects.filter(workbook=locked, deleted_rev__lte=floor).values_list("sid", flat=True))
                if gone:  # a deleted sheet goes whole (its rows in one statement, as a deleted row does)
                    Row.objects.filter(workbook=locked, sheet__in=gone).delete()
                    Column.objects.filter(workbook=locked, sheet__in=gone).delete()
                    Sheet.objects.filter(workbook=locked, sid__in=gone).delete()
            total += deleted
            self.drop_columns(workbook_id, floor)
        self.stdout.write(f"deleted {total} changes")

    def drop_columns(self, workbook_id: int, floor: int) -> None:
        """Columns deleted at or below the floor: their cells are emptied first, outside the workbook's
        lock (a 100,000-row workbook's rows take a while, and no edit can reach those cells), then the
        records go, which frees their slots for new columns."""
        gone = Column.objects.filter(workbook_id=workbook_id, deleted_rev__lte=floor)
        by_sheet: dict[int, list[int]] = {}
        for sheet, slot in gone.values_list("sheet", "slot"):
            by_sheet.setdefault(sheet, []).append(slot)
        for sheet, slots in by_sheet.items():
            store.clear_slots(workbook_id, sheet, slots)
        gone.delete()
