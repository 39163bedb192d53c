"""References by id, and the A1 text they have against a workbook's layout.

A formula names cells, not positions (contract v2, "References follow cells"): a cell reference is a
row id and a column id, a range is its first and last row and column ids (``None`` for a whole
column's rows or a whole row's columns). Positions come from a ``Layout`` only when a formula's text
is read or written, and when a range is evaluated.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple, Protocol

from .syntax import RefText

MAX_ROWS = 10_000_000  # beyond any sheet: a larger row number is not a reference
MAX_COLS = 18_278  # ZZZ


# Named tuples rather than frozen dataclasses: a workbook's 100,000 formulas load several times faster.
# A reference equals another of its kind with the same fields (and a plain tuple of them: none is compared).


class CellRef(NamedTuple):
    sheet: int | None  # None: the formula's own sheet
    row: int
    col: int
    abs_row: bool = False
    abs_col: bool = False


class RangeRef(NamedTuple):
    sheet: int | None
    rows: tuple[int, int] | None  # None: every row (a whole column, A:A)
    cols: tuple[int, int] | None  # None: every column (a whole row, 3:3)
    abs: tuple[bool, bool, bool, bool] = (False, False, False, False)  # first row, first col, last row, last col


Reference = CellRef | RangeRef


class Layout(Protocol):
    """Where rows, columns and sheets are, at the revision a formula is read or shown at."""

    def sheet_named(self, name: str) -> int | None: ...  # case-insensitive
    def sheet_name(self, sheet: int) -> str | None: ...
    def row_at(self, sheet: int, index: int) -> int | None: ...
    def col_at(self, sheet: int, index: int) -> int | None: ...
    def row_index(self, sheet: int, row: int) -> int | None: ...  # None: not live
    def col_index(self, sheet: int, col: int) -> int | None: ...


def column_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


@lru_cache(maxsize=20_000)
def column_letters(index: int) -> str:
    title, n = "", index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        title = chr(65 + rem) + title
    return title


_CELL = re.compile(r"(\$?)([A-Za-z]{1,3})(\$?)(\d{1,7})")
_COLS = re.compile(r"(\$?)([A-Za-z]{1,3}):(\$?)([A-Za-z]{1,3})")
_ROWS = re.compile(r"(\$?)(\d{1,7}):(\$?)(\d{1,7})")


class Unresolved(Exception):
    """A reference that names no cell: the formula keeps it as #REF! (``message`` says why)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def resolve(ref: RefText, own_sheet: int, layout: Layout) -> Reference:
    """The cells an A1 reference names, by id, read against ``layout``; ``Unresolved`` when it names
    a sheet that does not exist or a place beyond its sheet's last row or column."""
    sheet = None
    if ref.sheet is not None:
        sheet = layout.sheet_named(ref.sheet)
        if sheet is None:
            raise Unresolved(f"unknown sheet “{ref.sheet}”")
    target = own_sheet if sheet is None else sheet

    def row(number: str) -> int:
        found = layout.row_at(target, int(number) - 1) if 0 < int(number) <= MAX_ROWS else None
        if found is None:
            raise Unresolved(f"row {number} is beyond the sheet's last row")
        return found

    def col(letters: str) -> int:
        found = layout.col_at(target, column_index(letters))
        if found is None:
            raise Unresolved(f"column {letters.upper()} is beyond the sheet's last column")
        return found

    first, _, last = ref.a1.partition(":")
    if m := _CELL.fullmatch(first):
        start = (m[1] == "$", col(m[2]), m[3] == "$", row(m[4]))
        if not last:
            return CellRef(sheet, start[3], start[1], abs_row=start[2], abs_col=start[0])
        n = _CELL.fullmatch(last)
        end = (n[1] == "$", col(n[2]), n[3] == "$", row(n[4]))
        rows, cols = _ordered(layout.row_index, target, start[3], end[3]), _ordered(layout.col_index, target, start[1], end[1])
        return RangeRef(sheet, rows, cols, (start[2], start[0], end[2], end[0]))
    if m := _COLS.fullmatch(ref.a1):
        return RangeRef(sheet, None, _ordered(layout.col_index, target, col(m[2]), col(m[4])), (False, m[1] == "$", False, m[3] == "$"))
    m = _ROWS.fullmatch(ref.a1)
    return RangeRef(sheet, _ordered(layout.row_index, target, row(m[2]), row(m[4])), None, (m[1] == "$", False, m[3] == "$", False))


def _ordered(index_of, sheet: int, a: int, b: int) -> tuple[int, int]:
    """The two ends of a range, first one first (B5:A1 is A1:B5)."""
    return (a, b) if index_of(sheet, a) <= index_of(sheet, b) else (b, a)


_PLAIN_SHEET = re.compile(r"[A-Za-z_][\w.]*")


def quote_sheet(name: str) -> str:
    """A sheet's name as a reference writes it: quoted unless plain, and unless it could be read as a cell."""
    if _PLAIN_SHEET.fullmatch(name) and not _CELL.fullmatch(name) and name.upper() not in ("TRUE", "FALSE"):
        return name
    return "'" + name.replace("'", "''") + "'"


REF_ERROR = "#REF!"


def render(ref: Reference, own_sheet: int, layout: Layout) -> str:
    """The A1 text of a reference against ``layout``: #REF! (the whole reference) when a cell it names is gone."""
    target = own_sheet if ref.sheet is None else ref.sheet
    name = None if ref.sheet is None else layout.sheet_name(ref.sheet)
    if ref.sheet is not None and name is None:
        return REF_ERROR
    prefix = "" if name is None else quote_sheet(name) + "!"
    if isinstance(ref, CellRef):
        r, c = layout.row_index(target, ref.row), layout.col_index(target, ref.col)
        if r is None or c is None:
            return REF_ERROR
        return f"{prefix}{'$' if ref.abs_col else ''}{column_letters(c)}{'$' if ref.abs_row else ''}{r + 1}"
    rows = cols = None
    if ref.rows is not None:
        rows = (layout.row_index(target, ref.rows[0]), layout.row_index(target, ref.rows[1]))
        if None in rows:
            return REF_ERROR
    if ref.cols is not None:
        cols = (layout.col_index(target, ref.cols[0]), layout.col_index(target, ref.cols[1]))
        if None in cols:
            return REF_ERROR
    a = ref.abs
    if rows is None:
        return f"{prefix}{'$' if a[1] else ''}{column_letters(cols[0])}:{'$' if a[3] else ''}{column_letters(cols[1])}"
    if cols is None:
        return f"{prefix}{'$' if a[0] else ''}{rows[0] + 1}:{'$' if a[2] else ''}{rows[1] + 1}"
    first = f"{'$' if a[1] else ''}{column_letters(cols[0])}{'$' if a[0] else ''}{rows[0] + 1}"
    last = f"{'$' if a[3] else ''}{column_letters(cols[1])}{'$' if a[2] else ''}{rows[1] + 1}"
    return f"{prefix}{first}:{last}"


def to_wire(ref: Reference) -> dict:
    if isinstance(ref, CellRef):
        return {"sheet": ref.sheet, "row": ref.row, "col": ref.col, "abs": [ref.abs_row, ref.abs_col]}
    rows, cols = None if ref.rows is None else list(ref.rows), None if ref.cols is None else list(ref.cols)
    return {"sheet": ref.sheet, "rows": rows, "cols": cols, "abs": list(ref.abs)}


def from_wire(data: dict) -> Reference:
    if "row" in data:
        return CellRef(data["sheet"], data["row"], data["col"], bool(data["abs"][0]), bool(data["abs"][1]))
    rows, cols = data["rows"], data["cols"]
    return RangeRef(data["sheet"], None if rows is None else tuple(rows), None if cols is None else tuple(cols), tuple(bool(b) for b in data["abs"]))


def text_of_wire(parts: list, own_sheet: int, layout: Layout) -> str:
    """A formula's A1 text straight from its wire (or stored) parts, as ``Formula.text`` gives it: a
    snapshot renders 100,000 of them, and a cell reference on the formula's own sheet, most of them,
    is rendered here without making a reference of it first."""
    out = []
    for part in parts:
        if type(part) is str:
            out.append(part)
        elif part.get("sheet") is None and "row" in part:
            r, c = layout.row_index(own_sheet, part["row"]), layout.col_index(own_sheet, part["col"])
            if r is None or c is None:
                out.append(REF_ERROR)
            else:
                abs_row, abs_col = part["abs"]
                out.append(f"{'$' if abs_col else ''}{column_letters(c)}{'$' if abs_row else ''}{r + 1}")
        else:
            out.append(render(from_wire(part), own_sheet, layout))
    return "".join(out)
