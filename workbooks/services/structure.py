"""Rows and columns inserted, deleted and brought back (by undo): each writes only the records it adds
or marks, whatever the workbook's size (see models.Row)."""

from __future__ import annotations

from workbooks import protocol, selectors
from workbooks.domain import rules
from workbooks.domain.errors import NotFound
from workbooks.domain.values import CellWrite, DeleteRows, InsertRows, Limits
from workbooks.models import Column, Row, Sheet, Workbook
from workbooks.services import positions, sheets, store


def _live(model, sheet: Sheet, id_field: str, ids, issued: int) -> set[int]:
    """The ids among ``ids`` of the sheet's live rows (columns); NotFound for one of another sheet."""
    found = model.objects.filter(workbook_id=sheet.workbook_id, **{f"{id_field}__in": store.issued(ids, issued)})
    live = set()
    for id_, sid, dead in found.values_list(id_field, "sheet", "deleted_rev"):
        if sid != sheet.sid:
            raise NotFound(f"{'row' if model is Row else 'column'} {id_} is not in sheet “{sheet.name}”")
        if dead is None:
            live.add(id_)
    return live


def check_room(sheet: Sheet, *, rows: int = 0, cols: int = 0, limits: Limits) -> None:
    """Refuses ``rows`` more rows and ``cols`` more columns in the sheet past the limits: a sheet's
    rows and columns, and the workbook's cells (all its sheets)."""
    if rows:
        rules.check_capacity(sheet.row_count, rows, limits.max_rows, "rows")
    if cols:
        rules.check_capacity(sheet.col_count, cols, limits.max_cols, "columns")
    others = sheets.cells_of(sheet.workbook_id, besides=sheet.sid)
    rules.check_area(others + (sheet.row_count + rows) * (sheet.col_count + cols), limits.max_cells)


def _free_slots(sheet: Sheet, count: int) -> list[int]:
    """The ``count`` lowest slots no column of the sheet holds, live or deleted (see Column)."""
    taken = set(Column.objects.filter(workbook_id=sheet.workbook_id, sheet=sheet.sid).values_list("slot", flat=True))
    free = []
    slot = 0
    while len(free) < count:
        if slot not in taken:
            free.append(slot)
        slot += 1
    return free


def insert(workbook: Workbook, operation, limits: Limits) -> tuple[dict, dict]:
    sheet = sheets.resolve(workbook, operation.sheet)
    is_rows = isinstance(operation, InsertRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    count_field, issued_field = ("row_count", "rows_issued") if is_rows else ("col_count", "cols_issued")
    what = "row" if is_rows else "column"
    check_room(sheet, rows=operation.count if is_rows else 0, cols=0 if is_rows else operation.count, limits=limits)
    before = None
    if operation.before is not None:
        issued = getattr(workbook, issued_field)
        rules.check_insert_anchor(operation.before, live=_live(model, sheet, id_field, [operation.before], issued), issued=issued, what=what)
        before = model.objects.filter(workbook=workbook, **{id_field: operation.before}).values_list("position", flat=True).get()
    places = positions.room_for(model, {"workbook_id": workbook.id, "sheet": sheet.sid}, operation.count, before=before)
    first_id = getattr(workbook, issued_field) + 1
    ids = list(range(first_id, first_id + operation.count))
    if is_rows:
        records = [Row(workbook=workbook, sheet=sheet.sid, rid=rid, position=p) for rid, p in zip(ids, places, strict=True)]
    else:
        slots = _free_slots(sheet, operation.count)
        records = [Column(workbook=workbook, sheet=sheet.sid, cid=cid, position=p, slot=s) for cid, p, s in zip(ids, places, slots, strict=True)]
    model.objects.bulk_create(records, batch_size=1000)
    setattr(workbook, issued_field, ids[-1])
    setattr(sheet, count_field, getattr(sheet, count_field) + operation.count)
    sheet.save(update_fields=[count_field])
    return protocol.change_data(operation.kind, sheet=sheet.sid, before=operation.before, ids=ids), {}


def delete(workbook: Workbook, operation, limits: Limits) -> tuple[dict, dict]:
    """Deleted rows and columns stay as tombstones, their cells with them (see Row)."""
    sheet = sheets.resolve(workbook, operation.sheet)
    is_rows = isinstance(operation, DeleteRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    requested = operation.rows if is_rows else operation.cols
    issued = workbook.rows_issued if is_rows else workbook.cols_issued
    ids = rules.applied_deletes(requested, live=_live(model, sheet, id_field, requested, issued), issued=issued, what="row" if is_rows else "column")
    model.objects.filter(workbook=workbook, **{f"{id_field}__in": list(ids)}).update(deleted_rev=workbook.rev + 1)
    count_field = "row_count" if is_rows else "col_count"
    setattr(sheet, count_field, getattr(sheet, count_field) - len(ids))
    sheet.save(update_fields=[count_field])
    return protocol.change_data(operation.kind, sheet=sheet.sid, ids=ids), {}  # the tombstones keep what they held


def revive(workbook: Workbook, *, rows: bool, ids, limits: Limits) -> list[tuple[dict, dict]]:
    """Brings deleted rows (or columns) of live sheets back where they were, with their ids and
    cells; returns the steps that tell clients so, each with what it replaced: for each run of
    neighbours brought back, an ``insert_rows`` (``insert_cols``) with their ids and the live one they
    go before, then one ``set`` per sheet with their cells (which replaced nothing: they came back
    with the rows)."""
    model, id_field = (Row, "rid") if rows else (Column, "cid")
    count_field = "row_count" if rows else "col_count"
    found = model.objects.filter(workbook=workbook, deleted_rev__isnull=False, **{f"{id_field}__in": list(ids)})
    by_sheet: dict[int, list[tuple[int, int]]] = {}
    for id_, sid, position in found.order_by("position").values_list(id_field, "sheet", "position"):
        by_sheet.setdefault(sid, []).append((id_, position))
    steps = []
    for sheet in Sheet.objects.filter(workbook=workbook, sid__in=list(by_sheet), deleted_rev__isnull=True).order_by("position"):
        revived = by_sheet[sheet.sid]
        check_room(sheet, rows=len(revived) if rows else 0, cols=0 if rows else len(revived), limits=limits)
        model.objects.filter(workbook=workbook, **{f"{id_field}__in": [i for i, _ in revived]}).update(deleted_rev=None)
        setattr(sheet, count_field, getattr(sheet, count_field) + len(revived))
        sheet.save(update_fields=[count_field])
        kind = "insert_rows" if rows else "insert_cols"
        for run, before in _runs(model, sheet, revived):
            steps.append(({"kind": kind, **protocol.change_data(kind, sheet=sheet.sid, before=before, ids=run)}, {}))
        cells = _cells_of_rows(sheet, [i for i, _ in revived]) if rows else _cells_of_columns(sheet, [i for i, _ in revived])
        if cells:
            steps.append(({"kind": "set", **protocol.change_data("set", sheet=sheet.sid, cells=cells)}, {"restored": True}))
    return steps


RUNS_BY_QUERY = 50  # up to this many records brought back, each looks up its next live neighbour


def _runs(model, sheet: Sheet, revived: list[tuple[int, int]]) -> list[tuple[list[int], int | None]]:
    """The records brought back (id, position, in order) as runs of neighbours, each with the id of
    the live record it goes before (None: at the end), which is never one brought back."""
    live = model.objects.filter(workbook_id=sheet.workbook_id, sheet=sheet.sid, deleted_rev__isnull=True)
    id_field = "rid" if model is Row else "cid"
    if len(revived) <= RUNS_BY_QUERY:
        after = {i: live.filter(position__gt=p).order_by("position").values_list(id_field, flat=True).first() for i, p in revived}
    else:
        order = list(live.filter(position__gt=revived[0][1]).order_by("position").values_list(id_field, flat=True))
        following = dict(zip(order, order[1:], strict=False))
        after = {i: following.get(i) for i, _ in revived}
    runs: list[tuple[list[int], int | None]] = []
    current: list[int] = []
    for i, (rid, _) in enumerate(revived):
        current.append(rid)
        nxt = after[rid]
        if i + 1 < len(revived) and nxt == revived[i + 1][0]:
            continue
        runs.append((current, nxt))
        current = []
    return runs


def _cells_of_rows(sheet: Sheet, ids: list[int]) -> list[CellWrite]:
    columns = selectors.live_columns(workbook_id=sheet.workbook_id, sheet=sheet.sid)
    cells = []
    for rid, values in Row.objects.filter(workbook_id=sheet.workbook_id, rid__in=ids).order_by("position").values_list("rid", "values"):
        cells += [CellWrite(rid, cid, values[slot]) for cid, slot in columns if slot < len(values) and values[slot] is not None]
    return cells


def _cells_of_columns(sheet: Sheet, ids: list[int]) -> list[CellWrite]:
    slots = dict(Column.objects.filter(workbook_id=sheet.workbook_id, cid__in=ids).values_list("cid", "slot"))
    wanted = [(cid, slots[cid]) for cid in ids]
    cells = []
    for rid, values in store.cells_at_slots(sheet.workbook_id, sheet.sid, [slot for _, slot in wanted]):
        cells += [CellWrite(rid, cid, value) for (cid, _), value in zip(wanted, values, strict=True) if value is not None]
    return cells
