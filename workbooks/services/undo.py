"""Undo and redo of one user's session, and restore of a past revision (the contract's "Undo, redo,
restore"), inside ``commit_operation``'s transaction: the workbook is locked, and the result is one
``batch`` change.

Which changes a step takes and how each is taken back are rules of the domain (``domain.history``);
this module reads what they need (the session's changes, what others wrote since, the state of the
rows and columns concerned) and carries out the plans through the same code as ordinary edits.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection

from workbooks import past, protocol
from workbooks.domain import history, rules
from workbooks.domain.errors import Conflict
from workbooks.domain.values import DeleteCols, DeleteRows, DeleteSheet, Limits, RenameSheet, Restore, Undo
from workbooks.models import CellEdit, Column, Row, Sheet, Workbook
from workbooks.models import Change as ChangeRow
from workbooks.services import sheets, store, structure

CHANGES_PER_READ = 200
ENTRIES_PER_READ = 20  # the session's changes, newest first: an undo usually needs only the first few


def apply(workbook: Workbook, operation: Undo, limits: Limits, *, author_id: int) -> tuple[dict, dict]:
    """Takes back (or, for a redo, re-applies) the session's latest step; returns the ``batch``
    change's data and what it replaced. Nothing to undo or redo is ``Conflict``."""
    revs = history.next_step(_newest_first(workbook, author_id=author_id, session=operation.session), redo=operation.redo)
    if not revs:
        raise Conflict(f"nothing to {operation.kind} in this session")
    targets = store.logged(workbook.id, revs)
    since = _since(workbook, after=revs[0], author_id=author_id, session=operation.session)
    steps = [step for _, kind, data, replaced in targets for step in history.steps_of(kind, data, replaced)]
    made, replaced, skipped = [], [], []
    for step in reversed(steps):
        plan, left = history.invert(step, _state(workbook, step, since), since)
        skipped += left
        if plan is not None:
            for data, what in CARRY_OUT[plan.kind](workbook, plan, limits):
                made.append(data)
                replaced.append(what)
    if operation.redo:
        data = {"steps": made, "redo_of": targets[-1][2]["undo_of"], "skipped": skipped}
    else:
        data = {"steps": made, "undo_of": revs[-1], "skipped": skipped}
    return data, {"steps": replaced}


def restore(workbook: Workbook, operation: Restore, limits: Limits) -> tuple[dict, dict]:
    """Makes the workbook as it was at ``operation.rev``: sheets deleted since come back, then in each
    sheet of then the rows and columns that did not exist then are deleted, those deleted since come
    back, cells get their values of then; sheets get their names and order of then, the sheets added
    since are deleted, and the workbook gets its name of then. Returns the ``batch`` change's data and
    what it replaced (so it can be undone)."""
    with past.workbook_at(workbook_id=workbook.id, rev=operation.rev) as (name, sheets_then):
        then = []
        for sheet in sheets_then:
            rows, differ = set(), []
            for row in sheet.rows:
                rows.add(row.id)
                differ += row.differ
            then.append((sheet.id, sheet.name, set(sheet.columns), rows, differ))
    now = dict(Sheet.objects.filter(workbook=workbook).values_list("sid", "deleted_rev"))
    plans = [history.Plan("revive_sheet", sheet=sid) for sid, *_ in then if now.get(sid) is not None]
    for sid, _, cols, rows, differ in then:
        live_rows = set(Row.objects.filter(workbook=workbook, sheet=sid, deleted_rev__isnull=True).values_list("rid", flat=True))
        live_cols = set(Column.objects.filter(workbook=workbook, sheet=sid, deleted_rev__isnull=True).values_list("cid", flat=True))
        plans += [
            history.Plan("delete_rows", ids=tuple(sorted(live_rows - rows)), sheet=sid),
            history.Plan("delete_cols", ids=tuple(sorted(live_cols - cols)), sheet=sid),
            history.Plan("revive_rows", ids=tuple(sorted(rows - live_rows)), sheet=sid),
            history.Plan("revive_cols", ids=tuple(sorted(cols - live_cols)), sheet=sid),
            history.Plan("set", cells=tuple(differ), sheet=sid),
        ]
    plans += [history.Plan("rename_sheet", sheet=sid, name=sheet_name) for sid, sheet_name, *_ in then]
    plans += [history.Plan("order_sheets", ids=tuple(sid for sid, *_ in then))]
    plans += [history.Plan("delete_sheet", sheet=sid) for sid, dead in now.items() if dead is None and sid not in {s for s, *_ in then}]
    plans += [history.Plan("rename", name=name)]
    made, replaced = [], []
    for plan in plans:
        for data, what in CARRY_OUT[plan.kind](workbook, plan, limits) if _needed(workbook, plan) else ():
            made.append(data)
            replaced.append(what)
    return {"steps": made, "restore_of": operation.rev, "skipped": []}, {"steps": replaced}


def _needed(workbook: Workbook, plan: history.Plan) -> bool:
    if plan.kind == "rename":
        return plan.name != workbook.name
    if plan.kind == "rename_sheet":
        return sheets.resolve(workbook, plan.sheet).name != plan.name
    if plan.kind in ("revive_sheet", "delete_sheet", "order_sheets"):
        return True
    return bool(plan.ids or plan.cells)


STRUCTURE_KINDS = ("rename", "insert_rows", "insert_cols", "delete_rows", "delete_cols", *history.SHEET_KINDS, "batch")


def _newest_first(workbook: Workbook, *, author_id: int, session: str) -> Iterator[history.Entry]:
    """The session's kept changes, the latest first, ENTRIES_PER_READ at a time."""
    below = None
    while True:
        entries = store.session_entries(
            workbook.id, author_id=author_id, session=session, floor=workbook.history_floor, below=below, limit=ENTRIES_PER_READ
        )
        yield from (history.Entry(*entry) for entry in entries)
        if len(entries) < ENTRIES_PER_READ:
            return
        below = entries[-1][0]


def _since(workbook: Workbook, *, after: int, author_id: int, session: str) -> history.Since:
    """What everyone but this session did after revision ``after``: the cells they wrote from the
    record of cells written (``CellEdit``), the rest from the log's structural changes (a batch's
    from its steps). When nobody else wrote since, as for an undo right after the edit, that is one query."""
    since = history.Since()
    if not store.others_wrote(workbook.id, after=after, author_id=author_id, session=session):
        return since
    others = ChangeRow.objects.filter(workbook=workbook, rev__gt=after).exclude(author_id=author_id, session=session)
    theirs = CellEdit.objects.filter(workbook=workbook, rev__gt=after, rev__in=others.values("rev"))
    since.cells.update(theirs.values_list("row", "col").iterator(chunk_size=5000))
    structural = others.filter(kind__in=STRUCTURE_KINDS).order_by("rev").values_list("kind", "data", "replaced")
    for kind, data, replaced in structural.iterator(chunk_size=CHANGES_PER_READ):
        since.add(step for step in history.steps_of(kind, data, replaced) if step.kind != "set")
    return since


def _state(workbook: Workbook, step: history.Step, since: history.Since) -> history.State:
    """Which of the sheets, rows and columns ``step`` names are live now, and which are tombstones
    (a row or column of a deleted sheet is neither); and, for a sheet added, whether others wrote in it."""
    if step.kind == "set":
        rows, cols = {c["row"] for c in step.data["cells"]}, {c["col"] for c in step.data["cells"]}
    elif step.kind in history.SHEET_KINDS:
        rows, cols = (), ()
    else:
        rows, cols = step.data.get("rows", ()), step.data.get("cols", ())
    sheet_state = store.sheet_states(workbook.id)
    live_sheets = frozenset(sid for sid, dead in sheet_state.items() if dead is None)
    found_rows = store.line_states(workbook.id, rows=True, ids=rows)
    found_cols = store.line_states(workbook.id, rows=False, ids=cols)
    row_state = {i: dead for i, dead, sid in found_rows if sid in live_sheets}
    col_state = {i: dead for i, dead, sid in found_cols if sid in live_sheets}
    written = frozenset()
    if step.kind in ("add_sheet", "duplicate_sheet") and since.rows:
        sid = history.sheet_of(step)
        if Row.objects.filter(workbook=workbook, sheet=sid, rid__in=list(since.rows)).exists():
            written = frozenset({sid})
    return history.State(
        live_rows=frozenset(i for i, dead in row_state.items() if dead is None),
        live_cols=frozenset(i for i, dead in col_state.items() if dead is None),
        dead_rows=frozenset(i for i, dead in row_state.items() if dead is not None),
        dead_cols=frozenset(i for i, dead in col_state.items() if dead is not None),
        live_sheets=live_sheets,
        dead_sheets=frozenset(sid for sid, dead in sheet_state.items() if dead is not None),
        written_sheets=written,
    )


def _write_cells(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    slots = store.live_slots(workbook.id, {c.col for c in plan.cells})
    rows = store.live_values(workbook.id, {c.row for c in plan.cells})
    old = store.put_cells(rows, slots, plan.cells)  # the plan names live rows and columns only
    with connection.cursor() as cursor:
        store.update_rows(cursor, workbook.id, rows)
    return [({"kind": "set", **protocol.change_data("set", sheet=plan.sheet, cells=plan.cells)}, {"values": old})]


def _delete(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    operation = DeleteRows("", plan.ids, sheet=plan.sheet) if plan.kind == "delete_rows" else DeleteCols("", plan.ids, sheet=plan.sheet)
    data, replaced = structure.delete(workbook, operation, limits)
    return [({"kind": plan.kind, **data}, replaced)]


def _revive(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    return structure.revive(workbook, rows=plan.kind == "revive_rows", ids=plan.ids, limits=limits)


def _rename(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    old, workbook.name = workbook.name, plan.name
    return [({"kind": "rename", **protocol.change_data("rename", name=plan.name)}, {"name": old})]


def _delete_sheet(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    data, replaced = sheets.delete(workbook, DeleteSheet("", plan.sheet), limits)
    return [({"kind": "delete_sheet", **data}, replaced)]


def _revive_sheet(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    return sheets.revive(workbook, plan.sheet, limits)


def _rename_sheet(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    sheet = sheets.resolve(workbook, plan.sheet)
    name = rules.free_sheet_name(plan.name, taken=sheets.live(workbook.id).exclude(sid=sheet.sid).values_list("name", flat=True))
    data, replaced = sheets.rename(workbook, RenameSheet("", plan.sheet, name), limits)
    return [({"kind": "rename_sheet", **data}, replaced)]


def _move_sheet(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    data, replaced = sheets.move_back(workbook, sheets.resolve(workbook, plan.sheet), plan.position)
    return [({"kind": "move_sheet", **data}, replaced)]


def _order_sheets(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    """Moves the sheets named (live ones, in the order wanted) so they come in that order, last first."""
    steps = []
    wanted = list(plan.ids)
    for i in range(len(wanted) - 1, -1, -1):
        order = list(sheets.live(workbook.id).order_by("position").values_list("sid", flat=True))
        following = [sid for sid in order[order.index(wanted[i]) + 1 :] if sid in wanted]
        target = wanted[i + 1] if i + 1 < len(wanted) else None
        if (following[0] if following else None) != target:
            data, replaced = sheets.move_to(workbook, sheets.resolve(workbook, wanted[i]), target)
            steps.append(({"kind": "move_sheet", **data}, replaced))
    return steps


CARRY_OUT = {
    "set": _write_cells,
    "delete_rows": _delete,
    "delete_cols": _delete,
    "revive_rows": _revive,
    "revive_cols": _revive,
    "rename": _rename,
    "delete_sheet": _delete_sheet,
    "revive_sheet": _revive_sheet,
    "rename_sheet": _rename_sheet,
    "move_sheet": _move_sheet,
    "order_sheets": _order_sheets,
}
