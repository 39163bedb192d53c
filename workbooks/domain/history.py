"""Undo and redo as rules, without a database: which changes of a session an undo or a redo takes
back, and what takes each of their steps back without touching anyone else's work.

Every change is a list of steps: an ordinary change is one step (its kind and data), an undo, redo
or restore is a ``batch`` of them. The log keeps what each step replaced (``Change.replaced``), which
is all that going back needs: a ``set``'s old values, a rename's old name; deleted rows and columns
keep their cells themselves (tombstones), so bringing one back needs only its id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .values import Author, CellWrite


@dataclass(frozen=True)
class Step:
    kind: str
    data: dict  # the step's fields as the wire carries them, without ``kind``
    replaced: dict


def steps_of(kind: str, data: dict, replaced: dict) -> list[Step]:
    """The steps of a logged change."""
    if kind != "batch":
        return [Step(kind, data, replaced)]
    done = replaced.get("steps", [])
    return [Step(s["kind"], {k: v for k, v in s.items() if k != "kind"}, done[i] if i < len(done) else {}) for i, s in enumerate(data["steps"])]


def cells_written(kind: str, data: dict, replaced: dict) -> list[tuple[int, int, object, object]]:
    """(row, column, value, old value) of each cell a change wrote: its ``set`` steps, except those
    that only carry the cells of rows or columns brought back (they wrote nothing new)."""
    written = []
    for step in steps_of(kind, data, replaced):
        old = step.replaced.get("values") if step.kind == "set" else None
        if old is not None:
            written += [(cell["row"], cell["col"], _content(cell), before) for cell, before in zip(step.data["cells"], old, strict=True)]
    return written


def _content(cell: dict):
    """What a written cell holds, as its row stores it: a formula cell's parts with its value."""
    return {"f": cell["parts"], "v": cell.get("value")} if "parts" in cell else cell["value"]


@dataclass(frozen=True)
class Entry:
    """One change of a session, as undo sees it: its revision and group, and for an undo or redo the
    revision it took back or re-applied."""

    rev: int
    group: str = ""
    undo_of: int | None = None
    redo_of: int | None = None


def next_step(newest_first: Iterable[Entry], *, redo: bool) -> list[int]:
    """The revisions the next undo (or redo) of a session takes back, as one step, in the order they
    were made; empty when there is nothing to undo (or redo). ``newest_first``: the session's
    changes, the latest first; only as many are read as it takes, usually a few.

    The undo list grows by an edit (consecutive edits of one group are one step) or a redo, and each
    undo takes its last step; the redo list grows by an undo, each redo takes its last step, and an
    edit empties it. Read backwards, each undo (redo) cancels the latest push before it that no
    later one cancelled, as brackets pair up: the step wanted is the latest push left over.
    """
    cancelled = 0
    entries = iter(newest_first)
    entry = next(entries, None)
    while entry is not None:
        following = next(entries, None)
        if redo:
            if entry.undo_of is None and entry.redo_of is None:
                return []  # an edit emptied the redo list
            if entry.redo_of is not None:
                cancelled += 1
            elif cancelled:
                cancelled -= 1
            else:
                return [entry.rev]
        elif entry.undo_of is not None:
            cancelled += 1
        elif entry.redo_of is not None:
            if not cancelled:
                return [entry.rev]
            cancelled -= 1
        else:
            run = [entry.rev]  # the edit and the edits of its group just before it: one step
            while (
                entry.group and following is not None and following.group == entry.group and following.undo_of is None and following.redo_of is None
            ):
                run.append(following.rev)
                following = next(entries, None)
            if not cancelled:
                return sorted(run)
            cancelled -= 1
        entry = following
    return []


LEGACY_SHEET = 1  # the sheet of a change logged before workbooks had sheets: each had one, id 1


def sheet_of(step: Step) -> int:
    return step.data.get("sheet", LEGACY_SHEET)


@dataclass
class Since:
    """What other people (or the same person in another session) did after the change being taken
    back: the cells they wrote, whether they renamed the workbook, the sheets whose structure they
    changed, and the sheets they renamed or moved."""

    cells: set[tuple[int, int]] = field(default_factory=set)
    renamed: bool = False
    sheets: set[int] = field(default_factory=set)
    renamed_sheets: set[int] = field(default_factory=set)
    moved_sheets: set[int] = field(default_factory=set)

    def add(self, steps: Iterable[Step]) -> None:
        for step in steps:
            if step.kind == "set":
                self.cells.update((c["row"], c["col"]) for c in step.data["cells"])
            elif step.kind == "rename":
                self.renamed = True
            elif step.kind == "rename_sheet":
                self.renamed_sheets.add(sheet_of(step))
            elif step.kind == "move_sheet":
                self.moved_sheets.add(sheet_of(step))
            else:
                self.sheets.add(sheet_of(step))

    @property
    def rows(self) -> set[int]:
        return {row for row, _ in self.cells}

    @property
    def cols(self) -> set[int]:
        return {col for _, col in self.cells}


@dataclass(frozen=True)
class Plan:
    """What takes one step back: ``kind`` is ``set`` (``cells``), ``delete_rows`` / ``delete_cols`` or
    ``revive_rows`` / ``revive_cols`` (``ids``: deleted ones come back where they were, with their
    cells), ``rename`` (``name``), or for the ``sheet``: ``delete_sheet``, ``revive_sheet`` (it comes
    back where it was, with its ids and cells), ``rename_sheet`` (``name``) or ``move_sheet`` (back to
    ``position``)."""

    kind: str
    cells: tuple[CellWrite, ...] = ()
    ids: tuple[int, ...] = ()
    name: str = ""
    sheet: int | None = None
    position: int | None = None


@dataclass(frozen=True)
class State:
    """The workbook now, as far as a step concerns it: its live rows and columns (those of live
    sheets), the deleted ones it still keeps (tombstones), its live and deleted sheets, and the
    sheets others wrote in since."""

    live_rows: frozenset[int] = frozenset()
    live_cols: frozenset[int] = frozenset()
    dead_rows: frozenset[int] = frozenset()
    dead_cols: frozenset[int] = frozenset()
    live_sheets: frozenset[int] = frozenset()
    dead_sheets: frozenset[int] = frozenset()
    written_sheets: frozenset[int] = frozenset()


def invert(step: Step, state: State, since: Since) -> tuple[Plan | None, list[dict]]:
    """What takes ``step`` back now (None: nothing to do), and what it leaves as it is because
    someone else changed it since (``skipped``, as the wire lists them)."""
    kind, data, sheet = step.kind, step.data, sheet_of(step)
    if kind == "set":
        return _invert_set(step, state, since)
    if kind in ("insert_rows", "insert_cols"):
        rows = kind == "insert_rows"
        ids, live, written = (data["rows"], state.live_rows, since.rows) if rows else (data["cols"], state.live_cols, since.cols)
        kept = [i for i in ids if i in written]
        plan = Plan("delete_rows" if rows else "delete_cols", ids=tuple(i for i in ids if i in live and i not in written), sheet=sheet)
        return (plan if plan.ids else None), [{"sheet": sheet, "row" if rows else "col": i} for i in kept]
    if kind in ("delete_rows", "delete_cols"):
        rows = kind == "delete_rows"
        ids, dead = (data["rows"], state.dead_rows) if rows else (data["cols"], state.dead_cols)
        plan = Plan("revive_rows" if rows else "revive_cols", ids=tuple(i for i in ids if i in dead), sheet=sheet)
        gone = [i for i in ids if i not in dead]  # brought back by someone else meanwhile, or their sheet deleted
        return (plan if plan.ids else None), [{"sheet": sheet, "row" if rows else "col": i} for i in gone]
    if kind == "rename":
        if since.renamed or "name" not in step.replaced:
            return None, [{"sheet": None}]  # the workbook's name
        return Plan("rename", name=step.replaced["name"]), []
    if kind in ("add_sheet", "duplicate_sheet"):
        # Not when others wrote in it since (as rows they wrote in), nor when it is the last sheet.
        if sheet not in state.live_sheets or sheet in state.written_sheets or sheet in since.sheets or len(state.live_sheets) < 2:
            return None, [{"sheet": sheet}]
        return Plan("delete_sheet", sheet=sheet), []
    if kind == "delete_sheet":
        return (Plan("revive_sheet", sheet=sheet), []) if sheet in state.dead_sheets else (None, [{"sheet": sheet}])
    if kind == "rename_sheet":
        if sheet not in state.live_sheets or sheet in since.renamed_sheets:
            return None, [{"sheet": sheet}]
        return Plan("rename_sheet", sheet=sheet, name=step.replaced["name"]), []
    if kind == "move_sheet":
        if sheet not in state.live_sheets or sheet in since.moved_sheets:
            return None, [{"sheet": sheet}]
        return Plan("move_sheet", sheet=sheet, position=step.replaced["position"]), []
    raise ValueError(f"no undo for a {kind} step")


def _invert_set(step: Step, state: State, since: Since) -> tuple[Plan | None, list[dict]]:
    cells = step.data["cells"]
    if step.replaced.get("restored"):  # the cells of rows or columns brought back: they go with them
        return None, []
    old = step.replaced.get("values")
    sheet = sheet_of(step)
    writes, skipped = [], []
    for i, cell in enumerate(cells):
        row, col = cell["row"], cell["col"]
        if old is None or (row, col) in since.cells or row not in state.live_rows or col not in state.live_cols:
            skipped.append({"sheet": sheet, "row": row, "col": col})
        else:
            writes.append(CellWrite(row, col, old[i]))
    return (Plan("set", cells=tuple(writes), sheet=sheet) if writes else None), skipped


@dataclass
class Structure:
    """Which sheets, rows and columns a workbook has, and its name: walked back a change at a time to
    what they were at an earlier revision (rows and columns keep their places, deleted or not; a
    sheet's name and position are in ``sheets``, by id)."""

    rows: set[int]
    cols: set[int]
    name: str
    sheets: dict[int, tuple[str, int]] = field(default_factory=dict)

    def rewind(self, steps: list[Step]) -> None:
        """Undoes the structure of one change's ``steps`` (the cells are the caller's)."""
        for step in reversed(steps):
            sid = step.data.get("sheet")
            if step.kind in ("add_sheet", "duplicate_sheet"):
                self.sheets.pop(sid, None)
            elif step.kind == "delete_sheet":
                self.sheets[sid] = (step.replaced["name"], step.replaced["position"])
            elif step.kind == "rename_sheet" and sid in self.sheets:
                self.sheets[sid] = (step.replaced["name"], self.sheets[sid][1])
            elif step.kind == "move_sheet" and sid in self.sheets:
                self.sheets[sid] = (self.sheets[sid][0], step.replaced["position"])
            if step.kind in ("insert_rows", "delete_rows"):
                ids = set(step.data["rows"])
                self.rows = self.rows - ids if step.kind == "insert_rows" else self.rows | ids
            elif step.kind in ("insert_cols", "delete_cols"):
                ids = set(step.data["cols"])
                self.cols = self.cols - ids if step.kind == "insert_cols" else self.cols | ids
            elif step.kind == "rename" and "name" in step.replaced:
                self.name = step.replaced["name"]


SHEET_KINDS = ("add_sheet", "duplicate_sheet", "rename_sheet", "move_sheet", "delete_sheet")
STRUCTURAL_KINDS = ("insert_rows", "delete_rows", "insert_cols", "delete_cols", "rename", *SHEET_KINDS, "batch")


@dataclass(frozen=True)
class Version:
    """One entry of a workbook's history as people read it: changes ``first_rev`` to ``rev`` of one
    author, ``at`` the time of the latest."""

    rev: int
    first_rev: int
    at: datetime
    by: Author
    kinds: tuple[str, ...]
    count: int


def group_versions(changes: Iterable[tuple[int, Author, datetime, str]], *, limit: int, within_seconds: int, most: int) -> list[Version]:
    """Groups changes (``(rev, author, at, kind)``, newest first): consecutive ones of one author,
    each within ``within_seconds`` of the one after it, are one version of at most ``most`` changes.
    At most ``limit`` versions, newest first; reading stops at the first change that fits none."""
    versions: list[Version] = []
    earliest = None  # the time of the last version's oldest change so far
    for rev, by, at, kind in changes:
        if versions:
            last = versions[-1]
            if last.by == by and (earliest - at).total_seconds() <= within_seconds and last.count < most:
                versions[-1] = Version(last.rev, rev, last.at, by, tuple(sorted({*last.kinds, kind})), last.count + 1)
                earliest = at
                continue
            if len(versions) == limit:
                break
        versions.append(Version(rev, rev, at, by, (kind,), 1))
        earliest = at
    return versions
