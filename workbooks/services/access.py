"""Who may write: the workbook locked for the transaction with the writer's role, and staff acting through
the admin site."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from workbooks.domain.errors import Forbidden, NotFound
from workbooks.models import Member, Workbook


def locked_workbook(workbook_id: int, user, *, as_admin: bool = False) -> tuple[Workbook, str]:
    """The workbook, locked for this transaction, and the user's role; NotFound without a role.
    ``as_admin``: a staff user acting through the admin site, with the owner's rights (check_staff)."""
    if as_admin:
        check_staff(user)
        workbook = Workbook.objects.select_for_update().filter(pk=workbook_id).first()
        role = Member.Role.OWNER if workbook else None
    elif getattr(user, "is_authenticated", False):  # the role read with the lock, in one query
        member = Member.objects.filter(workbook_id=OuterRef("pk"), user_id=user.pk).values("role")[:1]
        workbook = Workbook.objects.select_for_update(of=("self",)).annotate(role=Subquery(member)).filter(pk=workbook_id).first()
        role = workbook.role if workbook else None
    else:
        workbook, role = None, None
    if role is None:
        raise NotFound("no such workbook")
    return workbook, role


def check_staff(user) -> None:
    """Only an active staff user acts through the admin site (which checks their model permissions)."""
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        raise Forbidden("only staff can act through the admin site")


def owned_workbook(workbook_id: int, user, *, as_admin: bool = False) -> Workbook:
    workbook, role = locked_workbook(workbook_id, user, as_admin=as_admin)
    if role != Member.Role.OWNER:
        raise Forbidden("only the owner can share a workbook")
    return workbook
