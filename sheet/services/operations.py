"""Every operation but ``set``, one at a time: lock the sheet, check the role, apply, log the change at
the next revision, commit; then broadcast (``apply_operation``). ``set`` goes to ``sets.commit_sets``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from sheet import broadcast, protocol, selectors
from sheet.domain import rules
from sheet.domain.errors import Forbidden, OperationError
from sheet.domain.values import WRITER_ROLES, Author, Change, DeleteCols, DeleteRows, InsertCols, InsertRows, Limits, Operation, Rename, SetCells
from sheet.limits import current as current_limits
from sheet.models import Change as ChangeRow
from sheet.models import Column, Row, Sheet
from sheet.services import access, positions, store
from sheet.services.outcomes import Applied
from sheet.services.sets import commit_sets


def _live(model, sheet: Sheet, id_field: str, ids, issued: int) -> set[int]:
    found = model.objects.filter(sheet=sheet, deleted_rev__isnull=True, **{f"{id_field}__in": store.issued(ids, issued)})
    return set(found.values_list(id_field, flat=True))


def _free_slots(sheet: Sheet, count: int) -> list[int]:
    """The ``count`` lowest slots no column of the sheet holds, live or deleted (see Column)."""
    taken = set(Column.objects.filter(sheet=sheet).values_list("slot", flat=True))
    free = []
    slot = 0
    while len(free) < count:
        if slot not in taken:
            free.append(slot)
        slot += 1
    return free


def _apply_insert(sheet: Sheet, operation, limits: Limits) -> tuple[dict, dict]:
    is_rows = isinstance(operation, InsertRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    count_field, issued_field = ("row_count", "rows_issued") if is_rows else ("col_count", "cols_issued")
    what = "row" if is_rows else "column"
    rules.check_capacity(getattr(sheet, count_field), operation.count, limits.max_rows if is_rows else limits.max_cols, f"{what}s")
    grown = (sheet.row_count + operation.count, sheet.col_count) if is_rows else (sheet.row_count, sheet.col_count + operation.count)
    rules.check_area(*grown, limits.max_cells)
    before = None
    if operation.before is not None:
        issued = getattr(sheet, issued_field)
        rules.check_insert_anchor(operation.before, live=_live(model, sheet, id_field, [operation.before], issued), issued=issued, what=what)
        before = model.objects.filter(sheet=sheet, **{id_field: operation.before}).values_list("position", flat=True).get()
    places = positions.room_for(model, sheet.id, operation.count, before=before)
    first_id = getattr(sheet, issued_field) + 1
    ids = list(range(first_id, first_id + operation.count))
    if is_rows:
        records = [Row(sheet=sheet, rid=rid, position=p) for rid, p in zip(ids, places, strict=True)]
    else:
        slots = _free_slots(sheet, operation.count)
        records = [Column(sheet=sheet, cid=cid, position=p, slot=s) for cid, p, s in zip(ids, places, slots, strict=True)]
    model.objects.bulk_create(records, batch_size=1000)
    setattr(sheet, issued_field, ids[-1])
    setattr(sheet, count_field, getattr(sheet, count_field) + operation.count)
    return protocol.change_data(operation.kind, before=operation.before, ids=ids), {}


def _apply_delete(sheet: Sheet, operation, limits: Limits) -> tuple[dict, dict]:
    """Deleted rows and columns stay as tombstones, their cells with them (see Row)."""
    is_rows = isinstance(operation, DeleteRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    requested = operation.rows if is_rows else operation.cols
    issued = sheet.rows_issued if is_rows else sheet.cols_issued
    ids = rules.applied_deletes(requested, live=_live(model, sheet, id_field, requested, issued), issued=issued, what="row" if is_rows else "column")
    model.objects.filter(sheet=sheet, **{f"{id_field}__in": list(ids)}).update(deleted_rev=sheet.rev + 1)
    count_field = "row_count" if is_rows else "col_count"
    setattr(sheet, count_field, getattr(sheet, count_field) - len(ids))
    return protocol.change_data(operation.kind, ids=ids), {}  # the tombstones keep what they held


def _apply_rename(sheet: Sheet, operation: Rename, limits: Limits) -> tuple[dict, dict]:
    old, sheet.name = sheet.name, operation.name
    return protocol.change_data("rename", name=operation.name), {"name": old}


# Every kind but ``set``, which commit_sets applies: each applies the operation to the locked sheet and
# returns the change's data and what it replaced (see domain.values.Change).
APPLY: dict[type, Callable] = {
    InsertRows: _apply_insert,
    InsertCols: _apply_insert,
    DeleteRows: _apply_delete,
    DeleteCols: _apply_delete,
    Rename: _apply_rename,
}


def commit_operation(*, sheet_id: int, user, operation: Operation, now: datetime | None = None, as_admin: bool = False) -> Applied:
    """Applies the operation atomically at the sheet's next revision and logs it. Does not broadcast.

    The sheet's row lock (an IMMEDIATE transaction on SQLite) serialises writers across every
    process, so revisions are consecutive and an op id is applied at most once.
    """
    if isinstance(operation, SetCells):
        (result,) = commit_sets(sheet_id=sheet_id, requests=[(user, operation)], now=now)
        if isinstance(result, OperationError):
            raise result
        return result
    limits = current_limits()
    with transaction.atomic():
        sheet, role = access.locked_sheet(sheet_id, user, as_admin=as_admin)
        if role not in WRITER_ROLES:
            raise Forbidden("viewers cannot change the sheet")
        original = next(iter(ChangeRow.objects.filter(sheet=sheet, op=operation.op)[:1]), None)
        if original is not None:
            return Applied(selectors.change_value(original), duplicate=True)
        data, replaced = APPLY[type(operation)](sheet, operation, limits)
        sheet.rev += 1
        now = now or timezone.now()
        change = Change(sheet.rev, operation.op, Author(user.pk, user.get_username()), now, operation.kind, data, replaced)
        ChangeRow.objects.create(
            sheet=sheet,
            rev=change.rev,
            op=change.op,
            author_id=user.pk,
            author_name=change.by.name,
            at=now,
            kind=change.kind,
            data=data,
            replaced=replaced,
        )
        sheet.updated_at = now
        sheet.save(update_fields=["rev", "name", "rows_issued", "cols_issued", "row_count", "col_count", "updated_at"])
    return Applied(change, duplicate=False)


def apply_operation(*, sheet_id: int, user, operation: Operation, as_admin: bool = False) -> Applied:
    """The write path for synchronous callers (HTTP views, the admin site ``as_admin``, for operations
    other than ``set``): commit, then broadcast."""
    applied = commit_operation(sheet_id=sheet_id, user=user, operation=operation, as_admin=as_admin)
    if not applied.duplicate:
        broadcast.changes_sync(sheet_id, [applied.change])
    return applied
