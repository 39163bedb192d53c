"""A workbook's cells in memory, literals and formulas, with every formula's computed value, kept
current by incremental recalculation.

``Book`` is both the ``Layout`` formulas are read and shown against and the ``Context`` they are
evaluated in. Cells are keyed by (row id, column id): ids are unique in a workbook, so a row names
its sheet. Each edit or structural change recalculates the formulas that depend on what changed,
transitively and in dependency order, and nothing else, and says which computed values it altered.

The dependency graph keeps no edge per cell of a range: a formula listens to each single cell it
names (``_cell_listeners``) and, per sheet, to each range it names (``_range_listeners``, grouped by
the range's columns so a changed cell is tested against a group once). Recalculation walks the cells
reached from what changed with a queue, not recursion, so a chain of 100,000 cells is no deeper than
one; cells that never become ready (Kahn's algorithm) are in a cycle or depend on one, and get
``#REF!`` "circular reference" (the contract, as Google Sheets).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from .evaluate import Evaluation
from .formula import Formula
from .functions import is_volatile
from .references import CellRef, RangeRef, Reference
from .values import CIRCULAR, MAX_TEXT, XlError, is_number

Key = tuple[int, int]  # (row id, column id)
TALL = 256  # rows of a range read from its columns' values kept in order rather than cell by cell


@dataclass
class SheetLayout:
    name: str
    rows: list[int]
    cols: list[int]
    _row_pos: dict[int, int] | None = None
    _col_pos: dict[int, int] | None = None

    def row_pos(self) -> dict[int, int]:
        if self._row_pos is None:
            self._row_pos = {rid: i for i, rid in enumerate(self.rows)}
        return self._row_pos

    def col_pos(self) -> dict[int, int]:
        if self._col_pos is None:
            self._col_pos = {cid: i for i, cid in enumerate(self.cols)}
        return self._col_pos

    def moved(self) -> None:
        self._row_pos = self._col_pos = None


@dataclass
class FormulaCell:
    sheet: int
    formula: Formula
    tree: tuple
    refs: tuple[Reference, ...]
    volatile: bool
    positional: bool  # ROW(), COLUMN() and their kin: the value moves with the cells


_POSITIONAL = ("ROW", "COLUMN", "ROWS", "COLUMNS", "INDEX")


def _calls(tree, names: tuple[str, ...]) -> bool:
    if not isinstance(tree, tuple) or not tree:
        return False
    if tree[0] == "call" and tree[1].removeprefix("_XLFN.") in names:
        return True
    if tree[0] == "call":
        return any(_calls(node, names) for node in tree[2])
    return any(_calls(node, names) for node in tree[1:] if isinstance(node, tuple))


@lru_cache(maxsize=4096)
def _traits(shape: tuple) -> tuple[bool, bool]:
    """Whether formulas of this shape are volatile, and whether they read positions."""
    tree = Formula(tuple(piece if piece is not None else CellRef(None, 0, 0) for piece in shape)).tree()
    return is_volatile(tree), _calls(tree, _POSITIONAL)


@dataclass
class Recalculated:
    """What a change did to computed values: every formula cell whose value it altered (key: value),
    and the formulas whose references it rewrote (a range losing its first or last row or column);
    and what they were before it (``values_before``: None for a cell computed for the first time),
    what the history keeps to show the workbook as it was."""

    values: dict[Key, object] = field(default_factory=dict)
    formulas: dict[Key, Formula] = field(default_factory=dict)
    values_before: dict[Key, object] = field(default_factory=dict)
    formulas_before: dict[Key, Formula] = field(default_factory=dict)

    def add(self, later: Recalculated) -> None:
        """Adds what a later change did (the steps of one batch): the earliest before-value counts."""
        for key, value in later.values_before.items():
            self.values_before.setdefault(key, value)
        for key, formula in later.formulas_before.items():
            self.formulas_before.setdefault(key, formula)
        self.values.update(later.values)
        self.formulas.update(later.formulas)


def same(a, b) -> bool:
    if type(a) is not type(b):
        return is_number(a) and is_number(b) and a == b
    return a == b


class Book:
    def __init__(self, *, sheets: Iterable[tuple[int, str, list[int], list[int]]], now: dt.datetime | None = None, seed: int | None = None):
        """``sheets``: (id, name, column ids, row ids) of each sheet, in order. Cells come with ``load``."""
        self.order: list[int] = []
        self.sheets: dict[int, SheetLayout] = {}
        self.row_sheet: dict[int, int] = {}
        self.col_sheet: dict[int, int] = {}
        for sid, name, cols, rows in sheets:
            self._add_layout(sid, name, list(cols), list(rows), before=None)
        self.literals: dict[Key, object] = {}
        self.cells: dict[Key, FormulaCell] = {}
        self.computed: dict[Key, object] = {}
        self._cell_listeners: dict[Key, set[Key]] = defaultdict(set)
        self._range_listeners: dict[int, dict[tuple | None, dict[Key, list]]] = defaultdict(lambda: defaultdict(dict))
        self._positional: dict[int, set[Key]] = defaultdict(set)
        self._volatile: set[Key] = set()
        self._circular: set[Key] = set()  # formulas in a cycle or depending on one (their value: CIRCULAR)
        self._columns: dict[int, list] = {}  # column id: its values in row order (see _column)
        self.now = now or dt.datetime.now(dt.UTC)
        self._random = random.Random(seed)

    # -- Layout (formulas.references) and Context (formulas.evaluate) ---------------------------------

    def sheet_named(self, name: str) -> int | None:
        folded = name.casefold()
        return next((sid for sid in self.order if self.sheets[sid].name.casefold() == folded), None)

    def sheet_name(self, sheet: int) -> str | None:
        layout = self.sheets.get(sheet)
        return None if layout is None else layout.name

    def row_at(self, sheet: int, index: int) -> int | None:
        rows = self.sheets[sheet].rows
        return rows[index] if 0 <= index < len(rows) else None

    def col_at(self, sheet: int, index: int) -> int | None:
        cols = self.sheets[sheet].cols
        return cols[index] if 0 <= index < len(cols) else None

    def row_index(self, sheet: int, row: int) -> int | None:
        layout = self.sheets.get(sheet)
        return None if layout is None else layout.row_pos().get(row)

    def col_index(self, sheet: int, col: int) -> int | None:
        layout = self.sheets.get(sheet)
        return None if layout is None else layout.col_pos().get(col)

    def rows(self, sheet: int) -> list[int] | None:
        layout = self.sheets.get(sheet)
        return None if layout is None else layout.rows

    def cols(self, sheet: int) -> list[int] | None:
        layout = self.sheets.get(sheet)
        return None if layout is None else layout.cols

    def value(self, sheet: int, row: int, col: int):
        key = (row, col)
        if key in self.cells:
            return self.computed.get(key)
        return self.literals.get(key)

    def values(self, sheet: int, rows: list[int], cols: list[int], top: int | None = None):
        """The values of a rectangle, row by row (a range's cells: the evaluator's hot loop); ``top``:
        where its first row is in the sheet. A tall one is read from each column's values kept in
        row order (``_column``), not cell by cell."""
        if top is not None and len(rows) >= TALL:
            columns = [self._column(sheet, col)[top : top + len(rows)] for col in cols]
            if len(columns) == 1:
                yield from columns[0]
            else:
                for line in zip(*columns, strict=True):
                    yield from line
            return
        cells, computed, literals = self.cells, self.computed, self.literals
        for row in rows:
            for col in cols:
                key = (row, col)
                yield computed.get(key) if key in cells else literals.get(key)

    def _column(self, sheet: int, col: int) -> list:
        """A column's values in row order, kept up to date as values change (``_changed``) until the
        sheet's rows move."""
        found = self._columns.get(col)
        if found is None:
            cells, computed, literals = self.cells, self.computed, self.literals
            found = self._columns[col] = [computed.get((r, col)) if (r, col) in cells else literals.get((r, col)) for r in self.sheets[sheet].rows]
        return found

    def _changed(self, key: Key) -> None:
        """A cell's value changed: so does its column's, if kept."""
        column = self._columns.get(key[1])
        if column is not None:
            at = self.sheets[self.col_sheet[key[1]]].row_pos().get(key[0])
            if at is not None:
                column[at] = self.value(0, key[0], key[1])

    def random(self) -> float:
        return self._random.random()

    # -- reading --------------------------------------------------------------------------------------

    def content(self, key: Key):
        """What a cell holds: its literal, or its Formula."""
        cell = self.cells.get(key)
        return cell.formula if cell is not None else self.literals.get(key)

    def text(self, key: Key) -> str:
        cell = self.cells[key]
        return cell.formula.text(cell.sheet, self)

    # -- changes ----------------------------------------------------------------------------------------

    def load(self, cells: Iterable[tuple[Key, object]], computed: dict[Key, object] | None = None) -> None:
        """Puts cells in without recalculating: literals, and Formulas with their ``computed`` values
        as stored (a cell without one is computed by ``recalculate_all``)."""
        self._columns.clear()
        for key, content in cells:
            if isinstance(content, Formula):
                self._put_formula(key, content)
                if computed is not None and key in computed:
                    self.computed[key] = computed[key]
                    if computed[key] == CIRCULAR:
                        self._circular.add(key)
            elif content is not None:
                self.literals[key] = content

    def set(self, writes: Iterable[tuple[Key, object]]) -> Recalculated:
        """Writes cells (a literal, None to clear, or a Formula) and recalculates what depends on them."""
        seeds = set()
        for key, content in writes:
            self._clear(key)
            if isinstance(content, Formula):
                self._put_formula(key, content)
            elif content is not None:
                self.literals[key] = content
            seeds.add(key)
            self._changed(key)
        return self._recalculate(seeds)

    def take_value(self, key: Key, value) -> None:
        """A formula's value as another engine computed it (a change logged by another process,
        replayed here): kept as if computed here."""
        if key in self.cells:
            self._store(key, value, Recalculated(), every=False)

    def recalculate_all(self) -> Recalculated:
        """Computes every formula again (after loading cells without their values, or to check)."""
        return self._recalculate(set(self.cells), every=True)

    def touch(self) -> Recalculated:
        """A change that wrote no cell still computes volatile formulas again (TODAY, NOW, RAND)."""
        return self._recalculate(set())

    def insert(self, sheet: int, *, rows: bool, before: int | None, ids: list[int], revived: bool = False) -> Recalculated:
        """Inserts rows (or columns) ``ids`` before ``before`` (None: at the end); ``revived``: they are
        deleted ones coming back (an undo), so formulas naming their cells compute again."""
        layout = self.sheets[sheet]
        order = layout.rows if rows else layout.cols
        at = len(order) if before is None else order.index(before)
        order[at:at] = ids
        owner = self.row_sheet if rows else self.col_sheet
        for i in ids:
            owner[i] = sheet
        layout.moved()
        self._columns.clear()
        named = set()
        if revived:
            back = set(ids)
            named = {listener for (r, c), found in self._cell_listeners.items() if (r if rows else c) in back for listener in found}
        return self._recalculate(self._moved(sheet) | named)

    def delete(self, sheet: int, *, rows: bool, ids: Iterable[int]) -> Recalculated:
        """Deletes rows (or columns): their cells go, references to them give #REF!, and a range that
        loses its first or last row (column) moves that end inward to the nearest one left within it,
        or becomes #REF! when none is (``formulas`` lists those rewritten)."""
        layout = self.sheets[sheet]
        gone = [i for i in dict.fromkeys(ids) if i in (layout.row_pos() if rows else layout.col_pos())]
        rewritten, before = self._shrink_ranges(sheet, rows=rows, gone=set(gone))
        keys = [(i, c) for i in gone for c in layout.cols] if rows else [(r, i) for r in layout.rows for i in gone]
        seeds = self._remove_cells(keys)
        dropped = set(gone)
        if rows:
            layout.rows = [r for r in layout.rows if r not in dropped]
        else:
            layout.cols = [c for c in layout.cols if c not in dropped]
        layout.moved()
        self._columns.clear()
        result = self._recalculate(seeds | self._moved(sheet) | set(rewritten), before=before)
        result.formulas, result.formulas_before = rewritten, {key: formula for key, (formula, _) in before.items()}
        for key in seeds:
            result.values.pop(key, None)  # a cell deleted has no value to send
            result.values_before.pop(key, None)
        return result

    def _remove_cells(self, keys: Iterable[Key]) -> set[Key]:
        """Empties these cells; returns those that held something or that a formula names (whose
        dependents must be computed again)."""
        seeds = set()
        for key in keys:
            if key in self.literals or key in self.cells:
                self._clear(key)
                seeds.add(key)
            elif key in self._cell_listeners:
                seeds.add(key)
        return seeds

    def add_sheet(self, sheet: int, name: str, *, before: int | None, cols: list[int], rows: list[int]) -> Recalculated:
        """A new sheet, or one deleted coming back (undo): formulas that named it see it again."""
        self._add_layout(sheet, name, list(cols), list(rows), before=before)
        return self._recalculate(self._naming(sheet))

    def _naming(self, sheet: int) -> set[Key]:
        """The formulas that name cells of ``sheet`` (for a sheet or rows coming back)."""
        layout = self.sheets[sheet]
        rows, cols = set(layout.rows), set(layout.cols)
        keys = {key for group in self._range_listeners.get(sheet, {}).values() for key in group}
        keys |= {listener for (r, c), found in self._cell_listeners.items() if r in rows and c in cols for listener in found}
        return keys

    def rename_sheet(self, sheet: int, name: str) -> None:
        self.sheets[sheet].name = name  # formulas name sheets by id: their text follows, their values stay

    def move_sheet(self, sheet: int, before: int | None) -> None:
        self.order.remove(sheet)
        self.order.insert(len(self.order) if before is None else self.order.index(before), sheet)

    def delete_sheet(self, sheet: int) -> Recalculated:
        """Deletes a sheet: its cells go, references to them give #REF! (and listen on, for an undo)."""
        seeds = self._naming(sheet)
        layout = self.sheets.pop(sheet)
        self._columns.clear()
        self.order.remove(sheet)
        seeds |= self._remove_cells((r, c) for r in layout.rows for c in layout.cols)
        result = self._recalculate(seeds | self._positional.get(sheet, set()))
        rows = set(layout.rows)
        for key in [k for k in result.values if k[0] in rows]:
            del result.values[key]
            result.values_before.pop(key, None)
        return result

    def duplicate_sheet(self, original: int, sheet: int, name: str, *, before: int | None, cols: list[int], rows: list[int]) -> Recalculated:
        """A copy of ``original`` with new ids (``cols`` and ``rows`` in the original's order); its
        formulas point into the copy where they pointed into the original."""
        source = self.sheets[original]
        row_map, col_map = dict(zip(source.rows, rows, strict=True)), dict(zip(source.cols, cols, strict=True))
        self._add_layout(sheet, name, list(cols), list(rows), before=before)
        copies = []
        for (r, c), value in list(self.literals.items()):
            if r in row_map and c in col_map:
                copies.append(((row_map[r], col_map[c]), value))
        for (r, c), cell in list(self.cells.items()):
            if r in row_map and c in col_map:
                copies.append(((row_map[r], col_map[c]), remap(cell.formula, original, sheet, row_map, col_map)))
        return self.set(copies)

    # -- the graph --------------------------------------------------------------------------------------

    def _add_layout(self, sid: int, name: str, cols: list[int], rows: list[int], *, before: int | None) -> None:
        self.sheets[sid] = SheetLayout(name, cols=cols, rows=rows)
        self.order.insert(len(self.order) if before is None else self.order.index(before), sid)
        for r in rows:
            self.row_sheet[r] = sid
        for c in cols:
            self.col_sheet[c] = sid

    def _put_formula(self, key: Key, formula: Formula) -> None:
        sheet = self.row_sheet[key[0]]
        tree = formula.tree()
        refs = formula.refs
        volatile, positional = _traits(formula.shape)
        cell = FormulaCell(sheet, formula, tree, refs, volatile, positional)
        self.cells[key] = cell
        for ref in refs:
            target = sheet if ref.sheet is None else ref.sheet
            if isinstance(ref, CellRef):
                self._cell_listeners[(ref.row, ref.col)].add(key)
            else:
                self._range_listeners[target][ref.cols].setdefault(key, []).append(ref.rows)
            if cell.positional:
                self._positional[target].add(key)
        if cell.positional:
            self._positional[sheet].add(key)
        if cell.volatile:
            self._volatile.add(key)

    def _clear(self, key: Key) -> None:
        self.literals.pop(key, None)
        cell = self.cells.pop(key, None)
        if cell is None:
            return
        self.computed.pop(key, None)
        self._circular.discard(key)
        for ref in cell.refs:
            target = cell.sheet if ref.sheet is None else ref.sheet
            if isinstance(ref, CellRef):
                listeners = self._cell_listeners.get((ref.row, ref.col))
                if listeners is not None:
                    listeners.discard(key)
                    if not listeners:
                        del self._cell_listeners[(ref.row, ref.col)]
            else:
                groups = self._range_listeners.get(target)
                if groups is not None and ref.cols in groups:
                    groups[ref.cols].pop(key, None)
                    if not groups[ref.cols]:
                        del groups[ref.cols]
            self._positional.get(target, set()).discard(key)
        self._positional.get(cell.sheet, set()).discard(key)
        self._volatile.discard(key)

    def _moved(self, sheet: int) -> set[Key]:
        """The formulas whose value may change when the sheet's rows or columns move: those with a
        range on it, and those that read positions."""
        keys = {key for group in self._range_listeners.get(sheet, {}).values() for key in group}
        return keys | self._positional.get(sheet, set())

    def _dependents(self, key: Key) -> Iterable[Key]:
        found = self._cell_listeners.get(key)
        direct = list(found) if found else []
        sheet = self.row_sheet.get(key[0])
        groups = self._range_listeners.get(sheet) if sheet is not None else None
        if not groups:
            return direct
        layout = self.sheets.get(sheet)
        if layout is None:
            return direct
        row_pos, col_pos = layout.row_pos(), layout.col_pos()
        r, c = row_pos.get(key[0]), col_pos.get(key[1])
        if r is None or c is None:
            return direct
        for cols, listeners in groups.items():
            if cols is not None:
                a, b = col_pos.get(cols[0]), col_pos.get(cols[1])
                if a is None or b is None or not (min(a, b) <= c <= max(a, b)):
                    continue
            for listener, specs in listeners.items():
                for rows in specs:
                    if rows is None:
                        direct.append(listener)
                        break
                    a, b = row_pos.get(rows[0]), row_pos.get(rows[1])
                    if a is not None and b is not None and min(a, b) <= r <= max(a, b):
                        direct.append(listener)
                        break
        return direct

    def _recalculate(self, seeds: set[Key], *, every: bool = False, before: dict | None = None) -> Recalculated:
        """Computes, in dependency order, every formula reached from ``seeds`` (and the volatile ones);
        says which values changed (``before``: (formula, value) of cells whose formula was just
        rewritten, so that their value before is known)."""
        start = seeds | self._volatile
        edges: dict[Key, list[Key]] = {}
        waiting: dict[Key, int] = defaultdict(int)
        reached = set(start)
        queue = deque(start)
        while queue:
            key = queue.popleft()
            following = self._dependents(key)
            edges[key] = following
            for d in following:
                waiting[d] += 1
                if d not in reached:
                    reached.add(d)
                    queue.append(d)
        ready = deque(k for k in reached if waiting[k] == 0)
        changed = Recalculated()
        if before:
            changed.values_before.update((key, value) for key, (_, value) in before.items())
        while ready:
            key = ready.popleft()
            if key in self.cells:
                self._evaluate(key, changed, every)
            for d in edges.get(key, ()):
                waiting[d] -= 1
                if waiting[d] == 0:
                    ready.append(d)
        for key in reached:
            if waiting[key] > 0 and key in self.cells:
                self._store(key, CIRCULAR, changed, every)
        return changed

    def _evaluate(self, key: Key, changed: Recalculated, every: bool) -> None:
        cell = self.cells[key]
        if self._circular and self._reads_circular(key, cell):
            # A cycle outside this walk: what depends on it is circular too, whatever it computes.
            self._store(key, CIRCULAR, changed, every)
            return
        try:
            value = Evaluation(self, cell.sheet, key[0], key[1], cell.refs).run(cell.tree)
        except RecursionError:
            value = XlError("#NUM!", "the formula is nested too deeply to compute")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            value = XlError("#VALUE!", f"text longer than {MAX_TEXT:,} characters")
        self._store(key, value, changed, every)

    def _reads_circular(self, key: Key, cell: FormulaCell) -> bool:
        """Whether the formula names a cell in a cycle or depending on one (other than itself)."""
        for ref in cell.refs:
            if isinstance(ref, CellRef):
                if (ref.row, ref.col) != key and (ref.row, ref.col) in self._circular:
                    return True
                continue
            layout = self.sheets.get(cell.sheet if ref.sheet is None else ref.sheet)
            if layout is None:
                continue
            row_pos, col_pos = layout.row_pos(), layout.col_pos()
            rows = None if ref.rows is None else sorted((row_pos.get(ref.rows[0], -1), row_pos.get(ref.rows[1], -1)))
            cols = None if ref.cols is None else sorted((col_pos.get(ref.cols[0], -1), col_pos.get(ref.cols[1], -1)))
            for other in self._circular:
                if other == key:
                    continue
                r, c = row_pos.get(other[0]), col_pos.get(other[1])
                if r is not None and c is not None and (rows is None or rows[0] <= r <= rows[1]) and (cols is None or cols[0] <= c <= cols[1]):
                    return True
        return False

    def _store(self, key: Key, value, changed: Recalculated, every: bool) -> None:
        old = self.computed.get(key, changed)  # a cell computed for the first time has no old value
        self.computed[key] = value
        if self._columns:
            self._changed(key)
        if value == CIRCULAR:
            self._circular.add(key)
        else:
            self._circular.discard(key)
        if every or old is changed or not same(old, value):
            changed.values[key] = value
            changed.values_before.setdefault(key, None if old is changed else old)

    def _shrink_ranges(self, sheet: int, *, rows: bool, gone: set[int]) -> tuple[dict[Key, Formula], dict[Key, tuple[Formula, object]]]:
        layout = self.sheets[sheet]
        order = layout.rows if rows else layout.cols
        position = layout.row_pos() if rows else layout.col_pos()
        rewritten: dict[Key, Formula] = {}
        before: dict[Key, tuple[Formula, object]] = {}
        for key in {key for group in self._range_listeners.get(sheet, {}).values() for key in group}:
            cell = self.cells[key]
            parts, touched = [], False
            for part in cell.formula.parts:
                if isinstance(part, RangeRef) and (cell.sheet if part.sheet is None else part.sheet) == sheet:
                    span = part.rows if rows else part.cols
                    # (A range one end of which was gone already, as a formula typed at an earlier
                    # revision may name, is #REF! as it is: nothing to shrink.)
                    if span is not None and (span[0] in gone or span[1] in gone) and span[0] in position and span[1] in position:
                        touched = True
                        a, b = sorted((position[span[0]], position[span[1]]))
                        left = [i for i in order[a : b + 1] if i not in gone]
                        if not left:
                            parts.append("#REF!")
                            continue
                        ends = (left[0], left[-1]) if position[span[0]] <= position[span[1]] else (left[-1], left[0])
                        part = RangeRef(part.sheet, ends if rows else part.rows, part.cols if rows else ends, part.abs)
                parts.append(part)
            if touched:
                formula = Formula(tuple(_merge_text(parts)))
                before[key] = (cell.formula, self.computed.get(key))
                self._clear(key)
                self._put_formula(key, formula)
                rewritten[key] = formula
        return rewritten, before


def _merge_text(parts: list) -> list:
    out: list = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        else:
            out.append(part)
    return out


def remap(formula: Formula, original: int, copy: int, row_map: dict[int, int], col_map: dict[int, int]) -> Formula:
    """A formula of ``original`` as its copy's: references into the original point into the copy."""

    def moved(ref: Reference) -> Reference:
        if ref.sheet not in (None, original):
            return ref
        sheet = None if ref.sheet is None else copy
        if isinstance(ref, CellRef):
            return CellRef(sheet, row_map.get(ref.row, ref.row), col_map.get(ref.col, ref.col), ref.abs_row, ref.abs_col)
        rows = None if ref.rows is None else (row_map.get(ref.rows[0], ref.rows[0]), row_map.get(ref.rows[1], ref.rows[1]))
        cols = None if ref.cols is None else (col_map.get(ref.cols[0], ref.cols[0]), col_map.get(ref.cols[1], ref.cols[1]))
        return RangeRef(sheet, rows, cols, ref.abs)

    return Formula(tuple(part if isinstance(part, str) else moved(part) for part in formula.parts))
