"""Evaluating one formula's tree against a workbook's values (``Context``), with Excel's operators,
coercions, implicit intersection and error propagation. Functions live in ``functions``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterator
from typing import Protocol

from .references import CellRef, RangeRef, Reference
from .values import DIV0, REF, XlError, compare, number, text_result, to_number, to_text


class Context(Protocol):
    """What the evaluator reads: computed values by id, and the live rows and columns of each sheet in order."""

    now: dt.datetime

    def value(self, sheet: int, row: int, col: int): ...
    def values(self, sheet: int, rows: list[int], cols: list[int], top: int | None = None) -> Iterator: ...  # row by row; top: rows[0]'s place
    def rows(self, sheet: int) -> list[int]: ...
    def cols(self, sheet: int) -> list[int]: ...
    def row_index(self, sheet: int, row: int) -> int | None: ...
    def col_index(self, sheet: int, col: int) -> int | None: ...
    def random(self) -> float: ...


class Area:
    """A rectangle of cells (a range, or an array constant): its values row by row, read when asked."""

    __slots__ = ("_grid", "context", "cols", "left", "rows", "sheet", "top")

    def __init__(self, context: Context | None, sheet: int | None, rows: list, cols: list, top: int = 0, left: int = 0, grid=None):
        self.context, self.sheet, self.rows, self.cols, self.top, self.left, self._grid = context, sheet, rows, cols, top, left, grid

    @classmethod
    def of(cls, grid: list[list]) -> Area:
        """An array of values (a constant, or what a function computed)."""
        return cls(None, None, list(range(len(grid))), list(range(len(grid[0]) if grid else 0)), grid=grid)

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.cols)

    def at(self, i: int, j: int):
        if self._grid is not None:
            return self._grid[i][j]
        return self.context.value(self.sheet, self.rows[i], self.cols[j])

    def values(self) -> Iterator:
        """Every value, row by row."""
        if self._grid is not None:
            for line in self._grid:
                yield from line
            return
        yield from self.context.values(self.sheet, self.rows, self.cols, self.top)

    def grid(self) -> list[list]:
        if self._grid is None:
            self._grid = [[self.context.value(self.sheet, r, c) for c in self.cols] for r in self.rows]
        return self._grid

    def column(self, j: int) -> list:
        return [self.at(i, j) for i in range(self.height)]

    def line(self, i: int) -> list:
        return [self.at(i, j) for j in range(self.width)]


class Evaluation:
    """One formula cell's evaluation: its sheet and position (for ROW(), COLUMN() and implicit
    intersection) and the references its tree names by index."""

    def __init__(self, context: Context, sheet: int, row: int, col: int, refs: tuple[Reference, ...]):
        self.context, self.sheet, self.row, self.col, self.refs = context, sheet, row, col, refs

    def position(self) -> tuple[int | None, int | None]:
        return self.context.row_index(self.sheet, self.row), self.context.col_index(self.sheet, self.col)

    def run(self, tree):
        """The cell's value: a scalar (a range where one value is expected is intersected); a formula
        that gives a blank cell's value shows 0, as Excel."""
        result = self.one(self.eval(tree))
        return 0.0 if result is None else result

    def arg(self, node):
        """A function's argument: as ``eval``, except that a cell reference stays a one-cell Area, since
        Excel's functions treat a reference (even to one cell) unlike a value (SUM skips text in one)."""
        if node[0] == "ref":
            ref = self.refs[node[1]]
            sheet = self.sheet if ref.sheet is None else ref.sheet
            if isinstance(ref, CellRef):
                r, c = self.context.row_index(sheet, ref.row), self.context.col_index(sheet, ref.col)
                if r is None or c is None:
                    return REF
                return Area(self.context, sheet, [ref.row], [ref.col], r, c)
            return self.area(sheet, ref)
        return self.eval(node)

    def eval(self, node):
        """A node's value: a scalar or an Area."""
        kind = node[0]
        if kind == "num" or kind == "str" or kind == "bool":
            return node[1]
        if kind == "ref":
            return self.reference(self.refs[node[1]])
        if kind == "op":
            return self.binary(node[1], node[2], node[3])
        if kind == "call":
            from .functions import call

            return call(self, node[1], node[2])
        if kind == "neg":
            value = to_number(self.one(self.eval(node[1])))
            return value if isinstance(value, XlError) else number(-value)
        if kind == "pos":
            return self.eval(node[1])
        if kind == "pct":
            value = to_number(self.one(self.eval(node[1])))
            return value if isinstance(value, XlError) else value / 100
        if kind == "err":
            return XlError(node[1], node[2] if len(node) > 2 else None)
        if kind == "arr":
            return Area.of([[XlError(v[1]) if isinstance(v, tuple) else v for v in row] for row in node[1]])
        if kind == "name":
            return XlError("#NAME?", f"unknown name “{node[1]}”")
        if kind == "missing":
            return None
        raise ValueError(f"unknown node {kind}")

    def reference(self, ref: Reference):
        sheet = self.sheet if ref.sheet is None else ref.sheet
        context = self.context
        if isinstance(ref, CellRef):
            if context.row_index(sheet, ref.row) is None or context.col_index(sheet, ref.col) is None:
                return REF
            value = context.value(sheet, ref.row, ref.col)
            return value
        return self.area(sheet, ref)

    def area(self, sheet: int, ref: RangeRef):
        context = self.context
        rows, cols = context.rows(sheet), context.cols(sheet)
        if rows is None:
            return REF  # the sheet is gone
        top, bottom = (0, len(rows) - 1) if ref.rows is None else (context.row_index(sheet, ref.rows[0]), context.row_index(sheet, ref.rows[1]))
        left, right = (0, len(cols) - 1) if ref.cols is None else (context.col_index(sheet, ref.cols[0]), context.col_index(sheet, ref.cols[1]))
        if top is None or bottom is None or left is None or right is None:
            return REF
        if top > bottom:
            top, bottom = bottom, top
        if left > right:
            left, right = right, left
        return Area(context, sheet, rows[top : bottom + 1], cols[left : right + 1], top, left)

    def one(self, value):
        """A single value where one is expected: a range is intersected with the formula's own row
        (a one-column range) or column (a one-row range), else #VALUE!."""
        if not isinstance(value, Area):
            return value
        if value.height == 1 and value.width == 1:
            return value.at(0, 0)
        if value.context is None:
            return value.at(0, 0)  # an array constant gives its first value, as Excel
        row, col = self.position()
        if value.sheet == self.sheet or value.sheet is None:
            if value.width == 1 and row is not None and value.top <= row < value.top + value.height:
                return value.at(row - value.top, 0)
            if value.height == 1 and col is not None and value.left <= col < value.left + value.width:
                return value.at(0, col - value.left)
        return XlError("#VALUE!", "a range where one value is expected")

    def binary(self, symbol: str, left_node, right_node):
        left, right = self.one(self.eval(left_node)), self.one(self.eval(right_node))
        if isinstance(left, XlError):
            return left
        if isinstance(right, XlError):
            return right
        if symbol == "&":
            a, b = to_text(left), to_text(right)
            return text_result(a + b)
        if symbol in _COMPARE:
            return _COMPARE[symbol](compare(left, right), 0)
        a, b = to_number(left), to_number(right)
        if isinstance(a, XlError):
            return a
        if isinstance(b, XlError):
            return b
        return arithmetic(symbol, a, b)


_COMPARE: dict[str, Callable] = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


def arithmetic(symbol: str, a: float, b: float):
    if symbol == "+":
        return number(a + b)
    if symbol == "-":
        return number(a - b)
    if symbol == "*":
        return number(a * b)
    if symbol == "/":
        return DIV0 if b == 0 else number(a / b)
    # ^: Excel's 0^0 is #NUM!, a negative base with a fractional exponent #NUM!
    if a == 0 and b == 0:
        return XlError("#NUM!")
    if a == 0 and b < 0:
        return DIV0
    try:
        result = a**b
    except OverflowError:
        return XlError("#NUM!")
    if isinstance(result, complex):
        return XlError("#NUM!")
    return number(result)
