"""Every function case of test_formulas computed again by an independent engine, IronCalc (Rust,
MIT/Apache, pinned in requirements-dev.txt), on the same workbook. Tabula agrees with it except where
Tabula follows Excel and IronCalc does not; each such case is listed with what Excel does."""

from __future__ import annotations

import ironcalc
import pytest

from workbooks.domain.formulas.values import XlError

from .test_formulas import CASES, compute

# IronCalc's "Sheet1" as test_formulas.book() fills it, and "Other sheet"!A1.
DATA = {
    "A1": 1.0, "A2": 2.0, "A3": 3.0, "A4": 4.0, "A5": 5.0, "B1": "apple", "B2": "banana", "B3": "cherry", "B4": True,
    "C1": 10.0, "C2": "20", "C3": False, "D1": 1.0, "D2": 5.0, "D3": 10.0, "D4": 20.0, "E1": "one", "E2": "five", "E3": "ten", "E4": "twenty",
}  # fmt: skip

EXCEL_NOT_IRONCALC = {
    "=(-8)^(1/3)": "Excel: a negative number to a fractional power is #NUM!; IronCalc takes the real cube root",
    "=A1:A5": "implicit intersection (the contract; Excel before dynamic arrays): F8 is outside A1:A5's rows, so #VALUE!",
    "=SUM()": "Excel refuses the entry (too few arguments) and IronCalc does not parse it; Tabula keeps it as #VALUE! saying why",
    '=SUMIF(B1:B4,"<>banana",A1)': "Excel resizes the sum range to the criteria range's shape; IronCalc gives #VALUE!",
    '=TEXT("a","@!")': "Excel writes the text where @ is in the format's text section, literals kept; IronCalc drops the literal",
    "=MATCH(1,D1:E4,0)": "Excel gives #N/A for a lookup range of several rows and columns; IronCalc #ERROR!",
    "=DATE(1900,2,29)": "Excel's serial 60 is 1900-02-29 (the 1900 leap-year bug it keeps); IronCalc has no such day",
    "=DAY(60)": "the same day that never was: Excel gives 29",
    "=MONTH(0)": "Excel reads serial 0 as 1900-01-00, month 1; IronCalc: #NUM!",
}
VOLATILE = ("RAND", "NOW", "TODAY")


def ironcalc_value(text: str):
    model = ironcalc.create("check", "en", "UTC")
    model.new_sheet()
    model.rename_sheet(1, "Other sheet")
    for ref, value in DATA.items():
        row, col = int(ref[1:]), ironcalc.column_number_from_name(ref[0])
        if isinstance(value, bool):
            model.update_cell_with_bool(0, row, col, value)
        elif isinstance(value, float):
            model.update_cell_with_number(0, row, col, value)
        else:
            model.update_cell_with_text(0, row, col, value)
    model.update_cell_with_number(1, 1, 1, 100.0)
    model.set_user_input(0, 8, 6, text)
    model.evaluate()
    value = model.get_cell_value_by_ref("Sheet1!F8")
    return XlError(value) if model.get_cell_type(0, 8, 6) == ironcalc.CellType.ErrorValue else value


CHECKED = [(text, expected) for text, expected in CASES if not any(name in text for name in VOLATILE)]


@pytest.mark.parametrize("text", [text for text, _ in CHECKED], ids=[text for text, _ in CHECKED])
def test_tabula_agrees_with_an_independent_engine(text):
    ours, theirs = compute(text), ironcalc_value(text)
    if isinstance(ours, XlError):
        ours = XlError(ours.code)  # IronCalc's errors carry no message
    if isinstance(ours, float) and isinstance(theirs, float):
        same = theirs == pytest.approx(ours, rel=1e-9, abs=1e-12)
    else:
        same = type(ours) is type(theirs) and ours == theirs
    assert same != (text in EXCEL_NOT_IRONCALC), f"Tabula {ours!r}, IronCalc {theirs!r}" + (
        f"; listed as differing: {EXCEL_NOT_IRONCALC[text]}" if text in EXCEL_NOT_IRONCALC else ""
    )
