"""Workbooks made and deleted, and who they are shared with."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import transaction

from workbooks import broadcast, protocol, rates, selectors
from workbooks.domain import rules
from workbooks.domain.errors import Forbidden, Invalid, NotFound, TooLarge
from workbooks.domain.values import Snapshot
from workbooks.limits import current as current_limits
from workbooks.models import Member, Workbook
from workbooks.services import access, positions
from workbooks.services import sheets as sheet_ops
from workbooks.services.outcomes import Conflict

logger = logging.getLogger(__name__)


def create_workbook(*, user, name: str, rows: int = 100, cols: int = 26, sheets: list | None = None) -> Snapshot:
    """Creates a workbook the user owns, with the ``sheets`` given (``[{"name", "rows"?, "cols"?}]``,
    each ``rows`` x ``cols`` by default) or one, ``Sheet1``. Its snapshot has no rows when it has
    more than SNAPSHOT_ON_CREATE_CELLS cells: building them would cost far more than the workbook (an
    empty 100,000 x 1,000 workbook is a hundred million nulls); the rows come with a GET of it."""
    limits = current_limits()
    wanted = _sheets_wanted(sheets, rows, cols, limits)
    name = protocol.workbook_name(name, limits)
    if Member.objects.filter(user_id=user.pk, role=Member.Role.OWNER).count() >= limits.max_workbooks_per_user:
        raise TooLarge(f"one person owns at most {limits.max_workbooks_per_user:,} workbooks; delete some first")
    rates.spend(
        f"creates:{user.pk}",
        limit=limits.creates_per_hour,
        seconds=3600,
        refusal=f"at most {limits.creates_per_hour} new workbooks an hour; try again later",
    )
    with transaction.atomic():
        workbook = Workbook.objects.create(name=name)
        Member.objects.create(workbook=workbook, user=user, role=Member.Role.OWNER)
        for i, (sheet_name, sheet_rows, sheet_cols) in enumerate(wanted):
            sheet_ops.create(workbook, name=sheet_name, rows=sheet_rows, cols=sheet_cols, position=positions.GAP * (i + 1))
        workbook.save(update_fields=["sheets_issued", "rows_issued", "cols_issued"])
    if sum(r * c for _, r, c in wanted) > SNAPSHOT_ON_CREATE_CELLS:
        return selectors.snapshot_head(workbook_id=workbook.id, role=Member.Role.OWNER)
    return selectors.snapshot(workbook_id=workbook.id, role=Member.Role.OWNER)


SNAPSHOT_ON_CREATE_CELLS = 100_000


def _sheets_wanted(sheets, rows, cols, limits) -> list[tuple[str, int, int]]:
    """(name, rows, columns) of each sheet a new workbook is to have, checked."""
    if sheets is None:
        sheets = [{"name": "Sheet1"}]
    if not isinstance(sheets, list) or not sheets:
        raise Invalid('sheets must be a non-empty list of {"name", "rows"?, "cols"?}')
    rules.check_capacity(0, len(sheets), limits.max_sheets, "sheets")
    wanted, names = [], []
    for sheet in sheets:
        if not isinstance(sheet, dict):
            raise Invalid('each sheet is {"name", "rows"?, "cols"?}')
        name = protocol.sheet_name(sheet.get("name"))
        rules.check_sheet_name(name, taken=names)
        names.append(name)
        size = (sheet.get("rows", rows), sheet.get("cols", cols))
        for count, limit, what in ((size[0], limits.max_rows, "rows"), (size[1], limits.max_cols, "columns")):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise Invalid(f"{what} must be a whole number, 0 or more")
            rules.check_capacity(0, count, limit, what)
        wanted.append((name, *size))
    rules.check_area(sum(r * c for _, r, c in wanted), limits.max_cells)
    return wanted


def delete_workbook(*, workbook_id: int, user, as_admin: bool = False) -> None:
    """Deletes the workbook and everything in it (its owner does, or staff ``as_admin``); once that is
    committed, its sockets close (4404)."""
    with transaction.atomic():
        workbook, role = access.locked_workbook(workbook_id, user, as_admin=as_admin)
        if role != Member.Role.OWNER:
            raise Forbidden("only the owner can delete a workbook")
        workbook.delete()
        _after_commit(broadcast.workbook_deleted_sync, workbook_id)


def _after_commit(send: Callable, *args, **kwargs) -> None:
    """Tells the sockets once the transaction has committed (at once outside one; the admin site makes
    one of each save). A channel layer that fails is logged, not raised: the edit is made, and the
    fan-out hubs' periodic checks close the sockets concerned within seconds all the same."""
    transaction.on_commit(functools.partial(send, *args, **kwargs), robust=True)


def _no_such_member(username: str) -> NotFound:
    # One answer whether the name is unknown, inactive or (to remove) has no role here: the sharing
    # form must not tell who has an account.
    return NotFound(f"no active user or member named {username!r}")


def _target_user(username: str):
    """The active user of that name (only they can be given a role)."""
    target = get_user_model().objects.filter(username=username, is_active=True).first()
    if target is None:
        raise _no_such_member(username)
    return target


def set_member(*, workbook_id: int, user, username: str, role, as_admin: bool = False) -> bool:
    """Gives the active user ``username`` the editor or viewer role (the owner does, or staff
    ``as_admin``); returns True when the membership is new. A changed role closes that user's sockets
    on the workbook (4409: they reconnect with it)."""
    if role not in (Member.Role.EDITOR, Member.Role.VIEWER):
        raise Invalid('role must be "editor" or "viewer"')
    with transaction.atomic():
        workbook = access.owned_workbook(workbook_id, user, as_admin=as_admin)
        target = _target_user(username)
        member = Member.objects.filter(workbook=workbook, user=target).first()
        if member is not None and member.role == Member.Role.OWNER:
            raise Conflict("the owner's role cannot be changed")
        if member is not None and member.role == role:
            return False
        limit = current_limits().max_members
        if member is None and Member.objects.filter(workbook=workbook).count() >= limit:
            raise TooLarge(f"a workbook is shared with at most {limit:,} people")
        Member.objects.update_or_create(workbook=workbook, user=target, defaults={"role": role})
        if member is not None:
            _after_commit(broadcast.member_changed_sync, workbook_id, target.pk, removed=False)
    return member is None


def remove_member(*, workbook_id: int, user, username: str, as_admin: bool = False) -> None:
    """Takes the role of ``username`` away (the owner does, or staff ``as_admin``); that user's sockets
    on the workbook close (4403). A deactivated member's role can be taken away too."""
    with transaction.atomic():
        workbook = access.owned_workbook(workbook_id, user, as_admin=as_admin)
        member = Member.objects.filter(workbook=workbook, user__username=username).first()
        if member is None:
            raise _no_such_member(username)
        if member.role == Member.Role.OWNER:
            raise Conflict("the owner cannot be removed")
        member.delete()
        _after_commit(broadcast.member_changed_sync, workbook_id, member.user_id, removed=True)
