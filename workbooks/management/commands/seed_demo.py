"""Creates the demo user and a demo workbook for the embedded mode (idempotent)."""

import ipaddress
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.core.management.commands.runserver import naiveip_re

from workbooks import services
from workbooks.domain.values import CellWrite, SetCells
from workbooks.models import Member

DEMO_ROWS = [
    ["Item", "Owner", "Estimate (days)", "Done"],
    ["Write the README", "demo", 1, True],
    ["Vendor Handsontable", "demo", 0.5, True],
    ["Invite the team", "demo", 0.25, False],
]
# Printed in the README: fine on 127.0.0.1, where only this machine can use it, and nowhere else.
WELL_KNOWN_PASSWORD = "demo-password"


def loopback_only(addrport: str) -> bool:
    """Whether runserver given ``addrport`` ("8000", "127.0.0.1:8000", "0.0.0.0:8000", "[::1]:8000", ...)
    is reachable from this machine only. A host name other than localhost counts as reachable."""
    match = naiveip_re.fullmatch(addrport.strip())
    if match is None:
        return False
    host = match["addr"] or "127.0.0.1"  # runserver's default
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # "0" (every address, to runserver) or a host name
        return False


class Command(BaseCommand):
    help = (
        "Create the demo user (printing its credentials) and a demo workbook. Its password is demo-password "
        "when the server listens on a loopback address; on any other, it is TABULA_DEMO_PASSWORD or a random "
        "one, printed once, and a demo user that still has demo-password gets the new one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("TABULA_DEMO_USER", "demo"))
        parser.add_argument("--password", default=os.environ.get("TABULA_DEMO_PASSWORD") or None)
        parser.add_argument(
            "--addr", default=os.environ.get("TABULA_ADDR", "127.0.0.1:8000"), help="where the server will listen (runserver's addrport)"
        )

    def handle(self, *args, username, password, addr, **options):
        reachable = not loopback_only(addr)
        if password is None:
            password = secrets.token_urlsafe(12) if reachable else WELL_KNOWN_PASSWORD
        user, created = get_user_model().objects.get_or_create(username=username)
        replaced = not created and reachable and user.check_password(WELL_KNOWN_PASSWORD)
        if created or replaced:
            user.set_password(password)
            user.save()
        if not Member.objects.filter(user=user).exists():
            snapshot = services.create_workbook(user=user, name="Demo workbook")
            (sheet,) = snapshot.sheets
            cols = [c.id for c in sheet.columns]
            cells = [
                CellWrite(row_id, cols[j], value)
                for (row_id, _), values in zip(sheet.rows, DEMO_ROWS, strict=False)
                for j, value in enumerate(values)
            ]
            services.commit_operation(workbook_id=snapshot.id, user=user, operation=SetCells("demo-seed", tuple(cells), sheet=sheet.id))
        if created or replaced:
            self.stdout.write(f"Demo user: {username} / password: {password}")
            if reachable:
                self.stdout.write(
                    f"{addr} is reachable from other machines, so the demo user's password is not {WELL_KNOWN_PASSWORD!r}"
                    f"{' any more' if replaced else ''}; it is shown only this once."
                )
        else:
            self.stdout.write(f"Demo user: {username} (exists; password unchanged)")
