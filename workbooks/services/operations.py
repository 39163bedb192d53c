"""Every operation but ``set``, one at a time: lock the workbook, check the role, apply, log the change at
the next revision, commit; then broadcast (``apply_operation``). ``set`` goes to ``sets.commit_sets``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from workbooks import broadcast, protocol, selectors
from workbooks.domain.errors import Forbidden, OperationError
from workbooks.domain.values import (
    WRITER_ROLES,
    AddSheet,
    Author,
    Change,
    DeleteCols,
    DeleteRows,
    DeleteSheet,
    DuplicateSheet,
    InsertCols,
    InsertRows,
    Limits,
    MoveSheet,
    Operation,
    Rename,
    RenameSheet,
    Restore,
    SetCells,
    Undo,
)
from workbooks.limits import current as current_limits
from workbooks.models import Change as ChangeRow
from workbooks.models import Refusal, Workbook
from workbooks.services import access, engines, sheets, store, structure, undo
from workbooks.services.outcomes import REMEMBERED, Applied
from workbooks.services.sets import commit_sets


def _apply_rename(workbook: Workbook, operation: Rename, limits: Limits) -> tuple[dict, dict]:
    old, workbook.name = workbook.name, operation.name
    return protocol.change_data("rename", name=operation.name), {"name": old}


# Every kind but ``set``, which commit_sets applies: each applies the operation to the locked workbook and
# returns the change's data and what it replaced (see domain.values.Change).
APPLY: dict[type, Callable] = {
    InsertRows: structure.insert,
    InsertCols: structure.insert,
    DeleteRows: structure.delete,
    DeleteCols: structure.delete,
    Rename: _apply_rename,
    AddSheet: sheets.add,
    DuplicateSheet: sheets.duplicate,
    RenameSheet: sheets.rename,
    MoveSheet: sheets.move,
    DeleteSheet: sheets.delete,
}


def commit_operation(*, workbook_id: int, user, operation: Operation, now: datetime | None = None, as_admin: bool = False) -> Applied:
    """Applies the operation atomically at the workbook's next revision and logs it. Does not broadcast.

    The workbook's row lock (an IMMEDIATE transaction on SQLite) serialises writers across every
    process, so revisions are consecutive and an op id is applied at most once.
    """
    if isinstance(operation, SetCells):
        (result,) = commit_sets(workbook_id=workbook_id, requests=[(user, operation)], now=now)
        if isinstance(result, OperationError):
            raise result
        return result
    limits = current_limits()
    now = now or timezone.now()
    with transaction.atomic():
        workbook, role = access.locked_workbook(workbook_id, user, as_admin=as_admin)
        if role not in WRITER_ROLES:
            raise Forbidden("viewers cannot change the workbook")
        earlier = store.earlier_outcome(workbook.id, operation.op)
        if isinstance(earlier, int):
            return Applied(selectors.change_value(ChangeRow.objects.get(workbook=workbook, rev=earlier)), duplicate=True)
        refusal, book = earlier, None
        if refusal is None:
            # The formula engine's Book, taken before the change reaches the database (a Book loaded
            # afterwards would hold it already); put back only once the change has committed.
            book = engines.take(workbook.id, workbook.rev) if workbook.has_formulas else None
            base_rev, followed = workbook.rev, None
            try:
                with transaction.atomic():  # a savepoint: an operation refused halfway leaves nothing
                    kind, (data, replaced) = _apply(workbook, operation, limits, author_id=user.pk)
                    if book is not None:
                        followed = engines.follow(book, kind, data, now)
                        replaced = {**replaced, **followed.replaced}
                        _store_formulas(workbook.id, followed)
                    change = _log(workbook, user, operation, kind, data, replaced, now)
            except OperationError as exc:
                refusal = exc
                if exc.code in REMEMBERED:
                    Refusal.objects.create(workbook=workbook, op=operation.op, code=exc.code, message=exc.message, rev=workbook.rev)
    if refusal is not None:  # raised once the refusal is committed: the workbook is unchanged
        if book is not None and followed is None:
            engines.keep(workbook.id, base_rev, book)
        raise refusal
    if book is not None:
        engines.keep(workbook.id, workbook.rev, book)
    return Applied(change, duplicate=False)


def _store_formulas(workbook_id: int, followed: engines.Followed) -> None:
    """Writes the formula cells the engine altered (see formulas.stored) into their rows."""
    with connection.cursor() as cursor:
        if followed.cells:
            store.update_rows(cursor, workbook_id, store.patched_rows(workbook_id, followed.cells))
        if followed.values:
            store.set_values(cursor, workbook_id, store.with_slots(workbook_id, followed.values))


def _apply(workbook: Workbook, operation: Operation, limits: Limits, *, author_id: int) -> tuple[str, tuple[dict, dict]]:
    """Applies the operation to the locked workbook: the change's kind, and its data and what it replaced."""
    if isinstance(operation, Undo):
        return "batch", undo.apply(workbook, operation, limits, author_id=author_id)
    if isinstance(operation, Restore):
        return "batch", undo.restore(workbook, operation, limits)
    return operation.kind, APPLY[type(operation)](workbook, operation, limits)


def _log(workbook: Workbook, user, operation: Operation, kind: str, data: dict, replaced: dict, now: datetime) -> Change:
    """Logs the change at the workbook's next revision (with the cells it wrote) and saves the workbook."""
    workbook.rev += 1
    change = Change(
        workbook.rev, operation.op, Author(user.pk, user.get_username()), now, kind, data, replaced, session=operation.session, group=operation.group
    )
    with connection.cursor() as cursor:  # an undo, redo or restore may write cells
        store.insert_changes(cursor, workbook.id, [change], connection.ops.adapt_datetimefield_value(now))
        store.insert_cell_edits(cursor, workbook.id, [change])
    workbook.updated_at = now
    workbook.save(update_fields=["rev", "name", "sheets_issued", "rows_issued", "cols_issued", "updated_at"])
    return change


def apply_operation(*, workbook_id: int, user, operation: Operation, as_admin: bool = False) -> Applied:
    """The write path for synchronous callers (HTTP views, the admin site ``as_admin``, for operations
    other than ``set``): commit, then broadcast."""
    applied = commit_operation(workbook_id=workbook_id, user=user, operation=operation, as_admin=as_admin)
    if not applied.duplicate:
        broadcast.changes_sync(workbook_id, [applied.change])
    return applied
