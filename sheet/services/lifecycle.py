"""Sheets made and deleted, and who they are shared with."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import transaction

from sheet import broadcast, protocol, rates, selectors
from sheet.domain import rules
from sheet.domain.errors import Forbidden, Invalid, NotFound, TooLarge
from sheet.domain.values import Snapshot
from sheet.limits import current as current_limits
from sheet.models import Column, Member, Row, Sheet
from sheet.services import access, positions
from sheet.services.outcomes import Conflict

logger = logging.getLogger(__name__)


def create_sheet(*, user, name: str, rows: int = 100, cols: int = 26) -> Snapshot:
    """Creates a sheet the user owns. Its snapshot has no rows when it has more than
    SNAPSHOT_ON_CREATE_CELLS cells: building them would cost far more than the sheet (an empty
    100,000 x 1,000 sheet is a hundred million nulls); the rows come with a GET of the sheet."""
    limits = current_limits()
    for count, limit, what in ((rows, limits.max_rows, "rows"), (cols, limits.max_cols, "columns")):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Invalid(f"{what} must be a whole number, 0 or more")
        rules.check_capacity(0, count, limit, what)
    rules.check_area(rows, cols, limits.max_cells)
    name = protocol.sheet_name(name, limits)
    if Member.objects.filter(user_id=user.pk, role=Member.Role.OWNER).count() >= limits.max_sheets_per_user:
        raise TooLarge(f"one person owns at most {limits.max_sheets_per_user:,} sheets; delete some first")
    rates.spend(
        f"creates:{user.pk}",
        limit=limits.creates_per_hour,
        seconds=3600,
        refusal=f"at most {limits.creates_per_hour} new sheets an hour; try again later",
    )
    with transaction.atomic():
        sheet = Sheet.objects.create(name=name, rows_issued=rows, cols_issued=cols, row_count=rows, col_count=cols)
        Member.objects.create(sheet=sheet, user=user, role=Member.Role.OWNER)
        places = positions.created(max(rows, cols))
        Column.objects.bulk_create([Column(sheet=sheet, cid=i + 1, position=places[i], slot=i) for i in range(cols)], batch_size=1000)
        Row.objects.bulk_create([Row(sheet=sheet, rid=i + 1, position=places[i]) for i in range(rows)], batch_size=1000)
    if rows * cols > SNAPSHOT_ON_CREATE_CELLS:
        return selectors.snapshot_head(sheet_id=sheet.id, role=Member.Role.OWNER)
    return selectors.snapshot(sheet_id=sheet.id, role=Member.Role.OWNER)


SNAPSHOT_ON_CREATE_CELLS = 100_000


def delete_sheet(*, sheet_id: int, user, as_admin: bool = False) -> None:
    """Deletes the sheet and everything in it (its owner does, or staff ``as_admin``); once that is
    committed, its sockets close (4404)."""
    with transaction.atomic():
        sheet, role = access.locked_sheet(sheet_id, user, as_admin=as_admin)
        if role != Member.Role.OWNER:
            raise Forbidden("only the owner can delete a sheet")
        sheet.delete()
        _after_commit(broadcast.sheet_deleted_sync, sheet_id)


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


def set_member(*, sheet_id: int, user, username: str, role, as_admin: bool = False) -> bool:
    """Gives the active user ``username`` the editor or viewer role (the owner does, or staff
    ``as_admin``); returns True when the membership is new. A changed role closes that user's sockets
    on the sheet (4409: they reconnect with it)."""
    if role not in (Member.Role.EDITOR, Member.Role.VIEWER):
        raise Invalid('role must be "editor" or "viewer"')
    with transaction.atomic():
        sheet = access.owned_sheet(sheet_id, user, as_admin=as_admin)
        target = _target_user(username)
        member = Member.objects.filter(sheet=sheet, user=target).first()
        if member is not None and member.role == Member.Role.OWNER:
            raise Conflict("the owner's role cannot be changed")
        if member is not None and member.role == role:
            return False
        limit = current_limits().max_members
        if member is None and Member.objects.filter(sheet=sheet).count() >= limit:
            raise TooLarge(f"a sheet is shared with at most {limit:,} people")
        Member.objects.update_or_create(sheet=sheet, user=target, defaults={"role": role})
        if member is not None:
            _after_commit(broadcast.member_changed_sync, sheet_id, target.pk, removed=False)
    return member is None


def remove_member(*, sheet_id: int, user, username: str, as_admin: bool = False) -> None:
    """Takes the role of ``username`` away (the owner does, or staff ``as_admin``); that user's sockets
    on the sheet close (4403). A deactivated member's role can be taken away too."""
    with transaction.atomic():
        sheet = access.owned_sheet(sheet_id, user, as_admin=as_admin)
        member = Member.objects.filter(sheet=sheet, user__username=username).first()
        if member is None:
            raise _no_such_member(username)
        if member.role == Member.Role.OWNER:
            raise Conflict("the owner cannot be removed")
        member.delete()
        _after_commit(broadcast.member_changed_sync, sheet_id, member.user_id, removed=True)
