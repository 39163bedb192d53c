"""Creates the demo user and a demo sheet for the embedded mode (idempotent)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from sheet import services
from sheet.domain.values import CellWrite, SetCells
from sheet.models import Member

DEMO_ROWS = [
    ["Item", "Owner", "Estimate (days)", "Done"],
    ["Write the README", "demo", 1, True],
    ["Vendor Handsontable", "demo", 0.5, True],
    ["Invite the team", "demo", 0.25, False],
]


class Command(BaseCommand):
    help = "Create the demo user (printing its credentials) and a demo sheet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("TABULA_DEMO_USER", "demo"))
        parser.add_argument("--password", default=os.environ.get("TABULA_DEMO_PASSWORD", "demo-password"))

    def handle(self, *args, username, password, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save()
        if not Member.objects.filter(user=user).exists():
            snapshot = services.create_sheet(user=user, name="Demo sheet")
            cols = [c.id for c in snapshot.columns]
            cells = [
                CellWrite(row_id, cols[j], value)
                for (row_id, _), values in zip(snapshot.rows, DEMO_ROWS, strict=False)
                for j, value in enumerate(values)
            ]
            services.commit_operation(sheet_id=snapshot.id, user=user, operation=SetCells("demo-seed", tuple(cells)))
        if created:
            self.stdout.write(f"Demo user: {username} / password: {password}")
        else:
            self.stdout.write(f"Demo user: {username} (exists; password unchanged)")
