"""Rows and columns inserted, deleted and brought back (by undo): each writes only the records it adds
or marks, whatever the workbook's size (see models.Row)."""

from __future__ import annotations

from workbooks import protocol, selectors
from workbooks.domain import rules
from workbooks.domain.values import CellWrite, DeleteRows, InsertRows, Limits
from workbooks.models import Column, Row, Workbook
from workbooks.services import positions, store


def _live(model, workbook: Workbook, id_field: str, ids, issued: int) -> set[int]:
    found = model.objects.filter(workbook=workbook, deleted_rev__isnull=True, **{f"{id_field}__in": store.issued(ids, issued)})
    return set(found.values_list(id_field, flat=True))


def _check_room(workbook: Workbook, *, rows: bool, count: int, limits: Limits) -> None:
    """Refuses ``count`` more rows (or columns) past the workbook's limits: rows or columns, and cells."""
    if rows:
        rules.check_capacity(workbook.row_count, count, limits.max_rows, "rows")
        rules.check_area(workbook.row_count + count, workbook.col_count, limits.max_cells)
    else:
        rules.check_capacity(workbook.col_count, count, limits.max_cols, "columns")
        rules.check_area(workbook.row_count, workbook.col_count + count, limits.max_cells)


def _free_slots(workbook: Workbook, count: int) -> list[int]:
    """The ``count`` lowest slots no column of the workbook holds, live or deleted (see Column)."""
    taken = set(Column.objects.filter(workbook=workbook).values_list("slot", flat=True))
    free = []
    slot = 0
    while len(free) < count:
        if slot not in taken:
            free.append(slot)
        slot += 1
    return free


def insert(workbook: Workbook, operation, limits: Limits) -> tuple[dict, dict]:
    is_rows = isinstance(operation, InsertRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    count_field, issued_field = ("row_count", "rows_issued") if is_rows else ("col_count", "cols_issued")
    what = "row" if is_rows else "column"
    _check_room(workbook, rows=is_rows, count=operation.count, limits=limits)
    before = None
    if operation.before is not None:
        issued = getattr(workbook, issued_field)
        rules.check_insert_anchor(operation.before, live=_live(model, workbook, id_field, [operation.before], issued), issued=issued, what=what)
        before = model.objects.filter(workbook=workbook, **{id_field: operation.before}).values_list("position", flat=True).get()
    places = positions.room_for(model, workbook.id, operation.count, before=before)
    first_id = getattr(workbook, issued_field) + 1
    ids = list(range(first_id, first_id + operation.count))
    if is_rows:
        records = [Row(workbook=workbook, rid=rid, position=p) for rid, p in zip(ids, places, strict=True)]
    else:
        slots = _free_slots(workbook, operation.count)
        records = [Column(workbook=workbook, cid=cid, position=p, slot=s) for cid, p, s in zip(ids, places, slots, strict=True)]
    model.objects.bulk_create(records, batch_size=1000)
    setattr(workbook, issued_field, ids[-1])
    setattr(workbook, count_field, getattr(workbook, count_field) + operation.count)
    return protocol.change_data(operation.kind, before=operation.before, ids=ids), {}


def delete(workbook: Workbook, operation, limits: Limits) -> tuple[dict, dict]:
    """Deleted rows and columns stay as tombstones, their cells with them (see Row)."""
    is_rows = isinstance(operation, DeleteRows)
    model, id_field = (Row, "rid") if is_rows else (Column, "cid")
    requested = operation.rows if is_rows else operation.cols
    issued = workbook.rows_issued if is_rows else workbook.cols_issued
    ids = rules.applied_deletes(
        requested, live=_live(model, workbook, id_field, requested, issued), issued=issued, what="row" if is_rows else "column"
    )
    model.objects.filter(workbook=workbook, **{f"{id_field}__in": list(ids)}).update(deleted_rev=workbook.rev + 1)
    count_field = "row_count" if is_rows else "col_count"
    setattr(workbook, count_field, getattr(workbook, count_field) - len(ids))
    return protocol.change_data(operation.kind, ids=ids), {}  # the tombstones keep what they held


def revive(workbook: Workbook, *, rows: bool, ids, limits: Limits) -> list[tuple[dict, dict]]:
    """Brings deleted rows (or columns) back where they were, with their ids and cells; returns the
    steps that tell clients so, each with what it replaced: for each run of neighbours brought back,
    an ``insert_rows`` (``insert_cols``) with their ids and the live one they go before, then one
    ``set`` with their cells (which replaced nothing: they came back with the rows)."""
    model, id_field = (Row, "rid") if rows else (Column, "cid")
    count_field = "row_count" if rows else "col_count"
    _check_room(workbook, rows=rows, count=len(ids), limits=limits)
    found = model.objects.filter(workbook=workbook, deleted_rev__isnull=False, **{f"{id_field}__in": list(ids)})
    revived = list(found.order_by("position").values_list(id_field, "position"))
    found.update(deleted_rev=None)
    setattr(workbook, count_field, getattr(workbook, count_field) + len(revived))
    kind = "insert_rows" if rows else "insert_cols"
    steps = [({"kind": kind, **protocol.change_data(kind, before=before, ids=run)}, {}) for run, before in _runs(model, workbook, revived)]
    cells = _cells_of_rows(workbook, [i for i, _ in revived]) if rows else _cells_of_columns(workbook, [i for i, _ in revived])
    if cells:
        steps.append(({"kind": "set", **protocol.change_data("set", cells=cells)}, {"restored": True}))
    return steps


RUNS_BY_QUERY = 50  # up to this many records brought back, each looks up its next live neighbour


def _runs(model, workbook: Workbook, revived: list[tuple[int, int]]) -> list[tuple[list[int], int | None]]:
    """The records brought back (id, position, in order) as runs of neighbours, each with the id of
    the live record it goes before (None: at the end), which is never one brought back."""
    live = model.objects.filter(workbook=workbook, deleted_rev__isnull=True)
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


def _cells_of_rows(workbook: Workbook, ids: list[int]) -> list[CellWrite]:
    columns = selectors.live_columns(workbook_id=workbook.id)
    cells = []
    for rid, values in Row.objects.filter(workbook=workbook, rid__in=ids).order_by("position").values_list("rid", "values"):
        cells += [CellWrite(rid, cid, values[slot]) for cid, slot in columns if slot < len(values) and values[slot] is not None]
    return cells


def _cells_of_columns(workbook: Workbook, ids: list[int]) -> list[CellWrite]:
    slots = dict(Column.objects.filter(workbook=workbook, cid__in=ids).values_list("cid", "slot"))
    wanted = [(cid, slots[cid]) for cid in ids]
    cells = []
    for rid, values in store.cells_at_slots(workbook.id, [slot for _, slot in wanted]):
        cells += [CellWrite(rid, cid, value) for (cid, _), value in zip(wanted, values, strict=True) if value is not None]
    return cells
