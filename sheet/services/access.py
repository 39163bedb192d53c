"""Who may write: the sheet locked for the transaction with the writer's role, and staff acting through
the admin site."""

from __future__ import annotations

from sheet import selectors
from sheet.domain.errors import Forbidden, NotFound
from sheet.models import Member, Sheet


def locked_sheet(sheet_id: int, user, *, as_admin: bool = False) -> tuple[Sheet, str]:
    """The sheet, locked for this transaction, and the user's role; NotFound without a role.
    ``as_admin``: a staff user acting through the admin site, with the owner's rights (check_staff)."""
    sheet = Sheet.objects.select_for_update().filter(pk=sheet_id).first()
    if as_admin:
        check_staff(user)
        role = Member.Role.OWNER if sheet else None
    else:
        role = selectors.role_of(user=user, sheet_id=sheet_id) if sheet else None
    if role is None:
        raise NotFound("no such sheet")
    return sheet, role


def check_staff(user) -> None:
    """Only an active staff user acts through the admin site (which checks their model permissions)."""
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        raise Forbidden("only staff can act through the admin site")


def owned_sheet(sheet_id: int, user, *, as_admin: bool = False) -> Sheet:
    sheet, role = locked_sheet(sheet_id, user, as_admin=as_admin)
    if role != Member.Role.OWNER:
        raise Forbidden("only the owner can share a sheet")
    return sheet
