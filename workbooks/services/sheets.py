"""Sheets (the tabs of a workbook) added, duplicated, renamed, moved, deleted and brought back (by
undo), inside ``commit_operation``'s transaction: the workbook is locked. A deleted sheet stays as a
tombstone with its rows and columns, as deleted rows do (see models.Sheet)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from django.db.models import F, Sum

from workbooks import protocol, selectors
from workbooks.domain import rules
from workbooks.domain.errors import Conflict, NotFound
from workbooks.domain.values import NEXT, AddSheet, CellWrite, DeleteSheet, DuplicateSheet, Limits, MoveSheet, RenameSheet
from workbooks.models import Column, Row, Sheet, Workbook
from workbooks.services import positions


def resolve(workbook: Workbook, sid: int | None, *, deleted_ok: bool = False) -> Sheet:
    """The workbook's sheet ``sid`` (None: its first, for a v1 client's operation); NotFound for an
    unknown id or (unless ``deleted_ok``) a deleted sheet, naming it."""
    sheets = Sheet.objects.filter(workbook=workbook)
    sheet = sheets.filter(deleted_rev__isnull=True).order_by("position").first() if sid is None else sheets.filter(sid=sid).first()
    if sheet is None:
        raise NotFound(f"unknown sheet id {sid}")
    if sheet.deleted_rev is not None and not deleted_ok:
        raise NotFound(f"sheet “{sheet.name}” was deleted")
    return sheet


def live(workbook_id: int):
    return Sheet.objects.filter(workbook_id=workbook_id, deleted_rev__isnull=True)


def cells_of(workbook_id: int, *, besides: int | None = None) -> int:
    """The workbook's cells (rows x columns of each live sheet), ``besides`` one sheet."""
    sheets = live(workbook_id).exclude(sid=besides) if besides is not None else live(workbook_id)
    return sheets.aggregate(cells=Sum(F("row_count") * F("col_count")))["cells"] or 0


def _names(workbook: Workbook, *, besides: int | None = None) -> list[str]:
    return list(live(workbook.id).exclude(sid=besides).values_list("name", flat=True))


def _place(workbook: Workbook, before: int | None) -> tuple[int | None, int | None]:
    """(the live sheet id, its position) a sheet goes before; (None, None) for the end."""
    if before is None:
        return None, None
    anchor = resolve(workbook, before)
    return anchor.sid, anchor.position


def _next_after(sheet: Sheet) -> int | None:
    """The live sheet after ``sheet`` (which may be a tombstone), None at the end."""
    return live(sheet.workbook_id).filter(position__gt=sheet.position).order_by("position").values_list("sid", flat=True).first()


def _check_count(workbook: Workbook, limits: Limits) -> None:
    rules.check_capacity(live(workbook.id).count(), 1, limits.max_sheets, "sheets")


def create(workbook: Workbook, *, name: str, rows: int, cols: int, position: int, values: Iterable[list] = ()) -> tuple[Sheet, list[int], list[int]]:
    """A new sheet of ``rows`` x ``cols`` cells with new ids, its rows' stored cells taken from
    ``values`` in order (a copy's; empty by default); returns it and its row and column ids."""
    workbook.sheets_issued += 1
    sheet = Sheet.objects.create(workbook=workbook, sid=workbook.sheets_issued, name=name, position=position, row_count=rows, col_count=cols)
    places = positions.created(max(rows, cols))
    col_ids = list(range(workbook.cols_issued + 1, workbook.cols_issued + cols + 1))
    row_ids = list(range(workbook.rows_issued + 1, workbook.rows_issued + rows + 1))
    Column.objects.bulk_create(
        [Column(workbook=workbook, sheet=sheet.sid, cid=cid, position=places[i], slot=i) for i, cid in enumerate(col_ids)], batch_size=1000
    )
    filled = iter(values)
    records = (Row(workbook=workbook, sheet=sheet.sid, rid=rid, position=places[i], values=next(filled, [])) for i, rid in enumerate(row_ids))
    while batch := list(itertools.islice(records, ROWS_PER_INSERT)):  # a big copy is never all in memory
        Row.objects.bulk_create(batch)
    workbook.cols_issued += cols
    workbook.rows_issued += rows
    return sheet, row_ids, col_ids


ROWS_PER_INSERT = 5000


def add(workbook: Workbook, operation: AddSheet, limits: Limits) -> tuple[dict, dict]:
    _check_count(workbook, limits)
    rules.check_sheet_name(operation.name, taken=_names(workbook))
    rules.check_area(cells_of(workbook.id) + operation.rows * operation.cols, limits.max_cells)
    before, at = _place(workbook, operation.before)
    (position,) = positions.room_for(Sheet, {"workbook_id": workbook.id}, 1, before=at)
    sheet, rows, cols = create(workbook, name=operation.name, rows=operation.rows, cols=operation.cols, position=position)
    return protocol.change_data("add_sheet", sheet=sheet.sid, name=sheet.name, before=before, columns=cols, rows=rows), {}


def duplicate(workbook: Workbook, operation: DuplicateSheet, limits: Limits) -> tuple[dict, dict]:
    """A copy of the sheet with new ids: its live columns and rows in order, their cells (each row's
    stored values rearranged so the copy's slots run 0, 1, 2, ... left to right)."""
    original = resolve(workbook, operation.sheet)
    _check_count(workbook, limits)
    rules.check_sheet_name(operation.name, taken=_names(workbook))
    rules.check_area(cells_of(workbook.id) + original.row_count * original.col_count, limits.max_cells)
    before, at = _place(workbook, _next_after(original) if operation.before == NEXT else operation.before)
    (position,) = positions.room_for(Sheet, {"workbook_id": workbook.id}, 1, before=at)
    columns = selectors.live_columns(workbook_id=workbook.id, sheet=original.sid)
    originals = Row.objects.filter(workbook=workbook, sheet=original.sid, deleted_rev__isnull=True).order_by("position")
    stored = originals.values_list("values", flat=True).iterator(chunk_size=ROWS_PER_INSERT)
    slots = [slot for _, slot in columns]
    copied = (_in_column_order(values, slots) for values in stored)
    copy, row_ids, col_ids = create(workbook, name=operation.name, rows=original.row_count, cols=len(columns), position=position, values=copied)
    data = protocol.change_data(
        "duplicate_sheet", sheet=copy.sid, original=original.sid, name=copy.name, before=before, columns=col_ids, rows=row_ids
    )
    return data, {}


def _in_column_order(values: list, slots: list[int]) -> list:
    """A row's stored cells rearranged so the slots run 0, 1, 2, ... (see Row), without trailing empties."""
    cells = [values[s] if s < len(values) else None for s in slots]
    while cells and cells[-1] is None:
        cells.pop()
    return cells


def rename(workbook: Workbook, operation: RenameSheet, limits: Limits) -> tuple[dict, dict]:
    sheet = resolve(workbook, operation.sheet)
    rules.check_sheet_name(operation.name, taken=_names(workbook, besides=sheet.sid))
    old, sheet.name = sheet.name, operation.name
    sheet.save(update_fields=["name"])
    return protocol.change_data("rename_sheet", sheet=sheet.sid, name=sheet.name), {"name": old}


def move(workbook: Workbook, operation: MoveSheet, limits: Limits) -> tuple[dict, dict]:
    sheet = resolve(workbook, operation.sheet)
    if operation.before == sheet.sid:
        raise Conflict("a sheet cannot go before itself")
    return move_to(workbook, sheet, operation.before)


def move_to(workbook: Workbook, sheet: Sheet, before: int | None) -> tuple[dict, dict]:
    """Moves the sheet before the live sheet ``before`` (None: to the end); what it replaced is its
    old position and the sheet it went before then."""
    old = {"position": sheet.position, "before": _next_after(sheet)}
    _, at = _place(workbook, before)
    (sheet.position,) = positions.room_for(Sheet, {"workbook_id": workbook.id}, 1, before=at)
    sheet.save(update_fields=["position"])
    return protocol.change_data("move_sheet", sheet=sheet.sid, before=before), old


def move_back(workbook: Workbook, sheet: Sheet, position: int) -> tuple[dict, dict]:
    """Puts the sheet back at a position it had (undo of a move): between the same neighbours, if
    they are still there."""
    old = {"position": sheet.position, "before": _next_after(sheet)}
    sheet.position = position
    sheet.save(update_fields=["position"])
    return protocol.change_data("move_sheet", sheet=sheet.sid, before=_next_after(sheet)), old


def delete(workbook: Workbook, operation: DeleteSheet, limits: Limits) -> tuple[dict, dict]:
    """The sheet stays as a tombstone with its rows and columns; deleting the last one is Conflict."""
    sheet = resolve(workbook, operation.sheet)
    if not live(workbook.id).exclude(sid=sheet.sid).exists():
        raise Conflict("a workbook keeps at least one sheet; add another before deleting this one")
    sheet.deleted_rev = workbook.rev + 1
    sheet.save(update_fields=["deleted_rev"])
    return protocol.change_data("delete_sheet", sheet=sheet.sid), {"name": sheet.name, "position": sheet.position}


def revive(workbook: Workbook, sid: int, limits: Limits) -> list[tuple[dict, dict]]:
    """Brings a deleted sheet back where it was, with its ids and cells: an ``add_sheet`` step with
    its old ids and the live sheet it goes before, then a ``set`` step with its cells. A name taken
    since gets a number (``Q3 (2)``)."""
    sheet = resolve(workbook, sid, deleted_ok=True)
    _check_count(workbook, limits)
    rules.check_area(cells_of(workbook.id) + sheet.row_count * sheet.col_count, limits.max_cells)
    sheet.name = rules.free_sheet_name(sheet.name, taken=_names(workbook))
    sheet.deleted_rev = None
    sheet.save(update_fields=["name", "deleted_rev"])
    columns = selectors.live_columns(workbook_id=workbook.id, sheet=sheet.sid)
    rows = Row.objects.filter(workbook=workbook, sheet=sheet.sid, deleted_rev__isnull=True).order_by("position")
    row_ids, cells = [], []
    for rid, values in rows.values_list("rid", "values").iterator(chunk_size=5000):
        row_ids.append(rid)
        cells += [CellWrite(rid, cid, values[slot]) for cid, slot in columns if slot < len(values) and values[slot] is not None]
    add_step = protocol.change_data(
        "add_sheet", sheet=sheet.sid, name=sheet.name, before=_next_after(sheet), columns=[cid for cid, _ in columns], rows=row_ids
    )
    steps = [({"kind": "add_sheet", **add_step}, {})]
    if cells:
        steps.append(({"kind": "set", **protocol.change_data("set", sheet=sheet.sid, cells=cells)}, {"restored": True}))
    return steps
