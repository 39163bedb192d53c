"""Undo and redo of one user's session, and restore of a past revision (the contract's "Undo, redo,
restore"), inside ``commit_operation``'s transaction: the workbook is locked, and the result is one
``batch`` change.

Which changes a step takes and how each is taken back are rules of the domain (``domain.history``);
this module reads what they need (the session's changes, what others wrote since, the state of the
rows and columns concerned) and carries out the plans through the same code as ordinary edits.
"""

from __future__ import annotations

from django.db import connection

from workbooks import past, protocol
from workbooks.domain import history
from workbooks.domain.errors import Conflict
from workbooks.domain.values import DeleteCols, DeleteRows, Limits, Restore, Undo
from workbooks.models import CellEdit, Column, Row, Workbook
from workbooks.models import Change as ChangeRow
from workbooks.selectors import live_columns
from workbooks.services import store, structure

CHANGES_PER_READ = 200
ENTRIES_PER_READ = 20  # the session's changes, newest first: an undo usually needs only the first few


def apply(workbook: Workbook, operation: Undo, limits: Limits, *, author_id: int) -> tuple[dict, dict]:
    """Takes back (or, for a redo, re-applies) the session's latest step; returns the ``batch``
    change's data and what it replaced. Nothing to undo or redo is ``Conflict``."""
    mine = ChangeRow.objects.filter(workbook=workbook, author_id=author_id, session=operation.session, rev__gt=workbook.history_floor)
    newest_first = mine.order_by("-rev").values_list("rev", "group", "undo_of", "redo_of").iterator(chunk_size=ENTRIES_PER_READ)
    revs = history.next_step((history.Entry(*row) for row in newest_first), redo=operation.redo)
    if not revs:
        raise Conflict(f"nothing to {operation.kind} in this session")
    targets = list(ChangeRow.objects.filter(workbook=workbook, rev__in=revs).order_by("rev"))
    since = _since(workbook, after=revs[0], author_id=author_id, session=operation.session)
    steps = [step for target in targets for step in history.steps_of(target.kind, target.data, target.replaced)]
    made, replaced, skipped = [], [], []
    for step in reversed(steps):
        plan, left = history.invert(step, _state(workbook, step), since, workbook.id)
        skipped += left
        if plan is not None:
            for data, what in CARRY_OUT[plan.kind](workbook, plan, limits):
                made.append(data)
                replaced.append(what)
    if operation.redo:
        data = {"steps": made, "redo_of": targets[-1].data["undo_of"], "skipped": skipped}
    else:
        data = {"steps": made, "undo_of": revs[-1], "skipped": skipped}
    return data, {"steps": replaced}


def restore(workbook: Workbook, operation: Restore, limits: Limits) -> tuple[dict, dict]:
    """Makes the workbook as it was at ``operation.rev``: rows and columns that did not exist then are
    deleted, those deleted since come back, cells get their values of then, the name its name of
    then; returns the ``batch`` change's data and what it replaced (so it can be undone)."""
    with past.workbook_at(workbook_id=workbook.id, rev=operation.rev) as (name, columns, rows_then):
        rows, differ = set(), []
        for row in rows_then:
            rows.add(row.id)
            differ += row.differ
    cols = set(columns)
    live_rows = set(Row.objects.filter(workbook=workbook, deleted_rev__isnull=True).values_list("rid", flat=True))
    live_cols = set(Column.objects.filter(workbook=workbook, deleted_rev__isnull=True).values_list("cid", flat=True))
    plans = [
        history.Plan("delete_rows", ids=tuple(sorted(live_rows - rows))),
        history.Plan("delete_cols", ids=tuple(sorted(live_cols - cols))),
        history.Plan("revive_rows", ids=tuple(sorted(rows - live_rows))),
        history.Plan("revive_cols", ids=tuple(sorted(cols - live_cols))),
        history.Plan("set", cells=tuple(differ)),
        history.Plan("rename", name=name),
    ]
    made, replaced = [], []
    for plan in plans:
        if plan.ids or plan.cells or (plan.kind == "rename" and plan.name != workbook.name):
            for data, what in CARRY_OUT[plan.kind](workbook, plan, limits):
                made.append(data)
                replaced.append(what)
    return {"steps": made, "restore_of": operation.rev, "skipped": []}, {"steps": replaced}


def _since(workbook: Workbook, *, after: int, author_id: int, session: str) -> history.Since:
    """What everyone but this session wrote after revision ``after``: the cells from the record of
    cells written (``CellEdit``), the renames from the log (a batch's from its steps)."""
    since = history.Since()
    others = ChangeRow.objects.filter(workbook=workbook, rev__gt=after).exclude(author_id=author_id, session=session)
    theirs = CellEdit.objects.filter(workbook=workbook, rev__gt=after, rev__in=others.values("rev"))
    since.cells.update(theirs.values_list("row", "col").iterator(chunk_size=5000))
    renames = others.filter(kind__in=("rename", "batch")).order_by("rev").values_list("kind", "data", "replaced")
    for kind, data, replaced in renames.iterator(chunk_size=CHANGES_PER_READ):
        since.add(step for step in history.steps_of(kind, data, replaced) if step.kind == "rename")
    return since


def _state(workbook: Workbook, step: history.Step) -> history.State:
    """Which of the rows and columns ``step`` names are live now, and which are tombstones."""
    if step.kind == "set":
        rows, cols = {c["row"] for c in step.data["cells"]}, {c["col"] for c in step.data["cells"]}
    else:
        rows, cols = step.data.get("rows", ()), step.data.get("cols", ())
    found_rows = Row.objects.filter(workbook=workbook, rid__in=list(rows)).values_list("rid", "deleted_rev") if rows else ()
    found_cols = Column.objects.filter(workbook=workbook, cid__in=list(cols)).values_list("cid", "deleted_rev") if cols else ()
    row_state, col_state = dict(found_rows), dict(found_cols)
    return history.State(
        live_rows=frozenset(i for i, dead in row_state.items() if dead is None),
        live_cols=frozenset(i for i, dead in col_state.items() if dead is None),
        dead_rows=frozenset(i for i, dead in row_state.items() if dead is not None),
        dead_cols=frozenset(i for i, dead in col_state.items() if dead is not None),
    )


def _write_cells(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    slots = dict(live_columns(workbook_id=workbook.id))
    rows = dict(Row.objects.filter(workbook=workbook, rid__in={c.row for c in plan.cells}, deleted_rev__isnull=True).values_list("rid", "values"))
    old = store.put_cells(rows, slots, plan.cells)  # the plan names live rows and columns only
    with connection.cursor() as cursor:
        store.update_rows(cursor, workbook.id, rows)
    return [({"kind": "set", **protocol.change_data("set", cells=plan.cells)}, {"values": old})]


def _delete(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    operation = DeleteRows("", plan.ids) if plan.kind == "delete_rows" else DeleteCols("", plan.ids)
    data, replaced = structure.delete(workbook, operation, limits)
    return [({"kind": plan.kind, **data}, replaced)]


def _revive(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    return structure.revive(workbook, rows=plan.kind == "revive_rows", ids=plan.ids, limits=limits)


def _rename(workbook: Workbook, plan: history.Plan, limits: Limits) -> list[tuple[dict, dict]]:
    old, workbook.name = workbook.name, plan.name
    return [({"kind": "rename", **protocol.change_data("rename", name=plan.name)}, {"name": old})]


CARRY_OUT = {
    "set": _write_cells,
    "delete_rows": _delete,
    "delete_cols": _delete,
    "revive_rows": _revive,
    "revive_cols": _revive,
    "rename": _rename,
}
