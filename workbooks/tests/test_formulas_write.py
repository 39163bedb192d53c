"""Formulas through the write path: typed A1 text is read at the sender's revision and stored by id,
every change carries the computed values it altered, and snapshots, undo and structural changes
keep formulas and their values right."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model
from model_bakery import baker

from tests import support
from workbooks import past, protocol, selectors, services
from workbooks.domain.errors import Conflict, HistoryTruncated, Invalid
from workbooks.domain.formulas import engine
from workbooks.domain.formulas.formula import from_wire
from workbooks.domain.formulas.stored import from_wire_value
from workbooks.domain.values import (
    AddSheet,
    CellWrite,
    DeleteCols,
    DeleteRows,
    DeleteSheet,
    DuplicateSheet,
    FormulaText,
    InsertCols,
    InsertRows,
    RenameSheet,
    Restore,
    SetCells,
    Undo,
)
from workbooks.models import Member, Workbook
from workbooks.services import engines

pytestmark = pytest.mark.django_db


@pytest.fixture
def workbook_id(ada):
    """A workbook owned by ada: Sheet1 with rows 1-5 and columns 1-3 (A, B, C)."""
    return services.create_workbook(user=ada, name="Sums", rows=5, cols=3).id


@pytest.fixture(autouse=True)
def fresh_books():
    """Each test starts with no workbook in the process's memory, as a process just started."""
    engines._books.clear()
    yield
    engines._books.clear()


class Tab:
    def __init__(self, workbook_id, user, session="tab"):
        self.workbook_id, self.user, self.session, self.count = workbook_id, user, session, 0

    def __call__(self, operation_type, *args, **fields):
        self.count += 1
        operation = operation_type(f"{self.user.username}-{self.session}-{self.count}", *args, session=self.session, **fields)
        return services.apply_operation(workbook_id=self.workbook_id, user=self.user, operation=operation).change

    def put(self, *cells, rev=None, sheet=None):
        writes = tuple(CellWrite(r, c, FormulaText(v) if isinstance(v, str) and v.startswith("=") else v) for r, c, v in cells)
        return self(SetCells, writes, rev, sheet=sheet)


def sheet_of(workbook_id, index=0):
    return protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))["sheets"][index]


def shown(workbook_id, index=0):
    """Each row's values as the snapshot shows them (computed), by row id."""
    return {row["id"]: row["values"] for row in sheet_of(workbook_id, index)["rows"]}


def formulas(workbook_id, index=0):
    return {(f["row"], f["col"]): f["formula"] for f in sheet_of(workbook_id, index)["formulas"]}


def recomputed(workbook_id) -> dict:
    """Every formula's value computed afresh from the stored literals and formulas (an independent
    check of what the write path kept)."""
    book = engines.load(workbook_id)
    book.recalculate_all()
    return {key: book.computed[key] for key in book.cells}


def stored_values(workbook_id) -> dict:
    book = engines.load(workbook_id)
    return {key: book.computed[key] for key in book.cells}


class FormulaSetTest:
    def test_a_formula_is_computed_stored_and_sent_with_its_text_and_parts(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 2), (2, 1, 3))
        change = tab.put((3, 1, "=SUM(A1:A2)*10"))
        (cell,) = change.data["cells"]
        assert cell["formula"] == "=SUM(A1:A2)*10"
        assert cell["value"] == 50
        assert from_wire(cell["parts"]).refs[0].rows == (1, 2)
        assert "value" in cell and change.data["computed"] == []
        assert shown(workbook_id)[3][0] == 50
        assert formulas(workbook_id) == {(3, 1): "=SUM(A1:A2)*10"}
        assert Workbook.objects.get(pk=workbook_id).has_formulas

    def test_an_edit_sends_every_value_it_altered_and_no_other(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1), (1, 2, "=A1*2"), (2, 2, "=B1+1"), (3, 2, "=C3"))
        change = tab.put((1, 1, 10))
        assert {(c["row"], c["col"]): c["value"] for c in change.data["computed"]} == {(1, 2): 20, (2, 2): 21}
        assert all(c["sheet"] == 1 for c in change.data["computed"])
        assert shown(workbook_id)[2][1] == 21
        assert protocol.change(change)["computed"] == change.data["computed"]

    def test_a_change_to_a_workbook_without_formulas_says_it_altered_none(self, ada, workbook_id):
        change = Tab(workbook_id, ada).put((1, 1, 5))
        assert protocol.change(change)["computed"] == []
        assert not Workbook.objects.get(pk=workbook_id).has_formulas

    def test_errors_travel_as_the_contract_says(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        change = tab.put((1, 1, "=1/0"), (2, 1, "=NOSUCH(1)"), (3, 1, "=A3+1"))
        values = {c["row"]: c["value"] for c in change.data["cells"]}
        assert values[1] == {"error": "#DIV/0!"}
        assert values[2]["error"] == "#NAME?" and "NOSUCH" in values[2]["message"]
        assert values[3] == {"error": "#REF!", "message": "circular reference"}

    def test_a_formula_that_does_not_parse_is_refused_saying_where_and_changes_nothing(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        with pytest.raises(Invalid, match="character"):
            tab.put((1, 1, 4), (2, 1, "=SUM(A1"))
        assert shown(workbook_id)[1][0] is None
        assert Workbook.objects.get(pk=workbook_id).rev == 0

    def test_a_literal_starting_with_equals_stays_text(self, ada, workbook_id):
        change = Tab(workbook_id, ada).put((1, 1, "=1+1"))  # put() makes it a formula
        literal = Tab(workbook_id, ada, "other")(SetCells, (CellWrite(2, 1, "=1+1"),), None)
        assert change.data["cells"][0]["value"] == 2
        assert literal.data["cells"][0] == {"row": 2, "col": 1, "value": "=1+1"}
        assert shown(workbook_id)[2][0] == "=1+1"

    def test_the_stored_values_are_what_a_full_recalculation_gives(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1), (2, 1, 2), (3, 1, 3), (1, 2, "=SUM(A:A)"), (2, 2, "=B1*A2"), (3, 2, "=AVERAGE(A1:A3)+B2"))
        tab.put((2, 1, 20))
        tab(InsertRows, 1, 2)
        tab.put((6, 1, 100))
        tab(DeleteRows, (3,))
        assert stored_values(workbook_id) == recomputed(workbook_id)


class TypedAtItsRevisionTest:
    def test_a_formula_typed_before_a_row_insert_names_the_cell_its_author_saw(self, ada, workbook_id):
        tab, other = Tab(workbook_id, ada), Tab(workbook_id, ada, "other")
        tab.put((5, 1, 7))
        seen = Workbook.objects.get(pk=workbook_id).rev
        other(InsertRows, 1, 2)  # two rows above row 1: what was A5 is A7 now
        change = tab.put((1, 2, "=A5*2"), rev=seen)
        assert change.data["cells"][0]["formula"] == "=A7*2"
        assert change.data["cells"][0]["value"] == 14

    def test_a_formula_typed_at_a_revision_below_the_floor_is_refused(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1))
        tab(InsertRows, None, 1)
        Workbook.objects.filter(pk=workbook_id).update(history_floor=2)
        with pytest.raises(HistoryTruncated):
            tab.put((1, 2, "=A1"), rev=1)
        assert tab.put((1, 2, 5), rev=1).data["cells"][0]["value"] == 5  # literals still apply

    def test_a_set_overwriting_a_formula_someone_wrote_since_says_it_replaced_that_formula(self, ada, workbook_id):
        bob = baker.make(get_user_model(), username="bob")
        baker.make(Member, workbook_id=workbook_id, user=bob, role="editor")
        tab, other = Tab(workbook_id, ada), Tab(workbook_id, bob)
        seen = Workbook.objects.get(pk=workbook_id).rev
        other.put((1, 2, "=A1+1"))
        (entry,) = protocol.change(tab.put((1, 2, 5), rev=seen))["overwritten"]
        assert (entry["formula"], "value" in entry) == ("=A1+1", False)


class ReferencesFollowTest:
    def test_inserted_rows_and_columns_move_the_text_not_the_target_and_resend_nothing(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((2, 1, 4), (1, 3, "=A2+SUM(A1:A3)"))
        rows = tab(InsertRows, 2, 1)
        cols = tab(InsertCols, 1, 1)
        assert "formulas" not in rows.data and rows.data["computed"] == [] and cols.data["computed"] == []
        assert formulas(workbook_id)[(1, 3)] == "=B3+SUM(B1:B4)"
        assert shown(workbook_id)[1][3] == 8

    def test_a_deleted_cell_gives_ref_and_undo_brings_the_value_back(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((2, 1, 4), (1, 2, "=A2*3"))
        deleted = tab(DeleteRows, (2,))
        assert deleted.data["computed"] == [{"sheet": 1, "row": 1, "col": 2, "value": {"error": "#REF!"}}]
        assert formulas(workbook_id)[(1, 2)] == "=#REF!*3"
        undone = tab(Undo)
        assert {"sheet": 1, "row": 1, "col": 2, "value": 12} in undone.data["computed"]
        assert formulas(workbook_id)[(1, 2)] == "=A2*3"
        assert stored_values(workbook_id) == recomputed(workbook_id)

    def test_a_range_losing_its_last_row_is_rewritten_and_resent(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1), (2, 1, 2), (3, 1, 3), (5, 2, "=SUM(A1:A3)"))
        change = tab(DeleteRows, (3,))
        assert change.data["formulas"] == [{"sheet": 1, "row": 5, "col": 2, "formula": "=SUM(A1:A2)", "parts": change.data["formulas"][0]["parts"]}]
        assert change.data["computed"] == [{"sheet": 1, "row": 5, "col": 2, "value": 3}]
        assert formulas(workbook_id)[(5, 2)] == "=SUM(A1:A2)"

    def test_sheets_renamed_and_deleted_in_other_sheets_formulas(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        data = tab(AddSheet, "Rates", None, 3, 2).data
        rates_row, rates_col = data["rows"][0], data["columns"][0]
        tab.put((rates_row, rates_col, 0.5), sheet=data["sheet"])
        tab.put((1, 1, "=Rates!A1*100"))
        assert shown(workbook_id)[1][0] == 50
        tab(RenameSheet, data["sheet"], "Q1 rates")
        assert formulas(workbook_id)[(1, 1)] == "='Q1 rates'!A1*100"
        deleted = tab(DeleteSheet, data["sheet"])
        assert deleted.data["computed"] == [{"sheet": 1, "row": 1, "col": 1, "value": {"error": "#REF!"}}]
        assert formulas(workbook_id)[(1, 1)] == "=#REF!*100"
        tab(Undo)
        assert shown(workbook_id)[1][0] == 50
        assert formulas(workbook_id)[(1, 1)] == "='Q1 rates'!A1*100"

    def test_a_duplicated_sheets_formulas_point_into_the_copy_also_once_loaded_again(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 3), (1, 2, "=A1*2"))
        copy = tab(DuplicateSheet, 1, "Copy").data
        engines._books.clear()  # as a process started afresh: the copy's formulas as stored
        (row, *_), (col_a, col_b, *_) = copy["rows"], copy["columns"]
        change = tab.put((row, col_a, 10), sheet=copy["sheet"])
        assert change.data["computed"] == [{"sheet": copy["sheet"], "row": row, "col": col_b, "value": 20}]
        assert shown(workbook_id)[1][:2] == [3, 6]
        assert formulas(workbook_id, 1) == {(row, col_b): "=A1*2"}
        assert stored_values(workbook_id) == recomputed(workbook_id)


class UndoAndHistoryTest:
    def test_undo_puts_the_formula_back_and_its_value(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 3), (1, 2, "=A1*2"))
        tab.put((1, 2, 99))
        undone = tab(Undo)
        (step,) = undone.data["steps"]
        assert step["cells"] == [{"row": 1, "col": 2, "parts": step["cells"][0]["parts"], "formula": "=A1*2", "value": 6}]
        assert formulas(workbook_id) == {(1, 2): "=A1*2"}
        tab(Undo)
        assert formulas(workbook_id) == {} and shown(workbook_id)[1][:2] == [None, None]

    def test_a_past_revision_shows_the_formulas_as_they_read_then(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((3, 1, 5), (1, 2, "=A3"))
        then = Workbook.objects.get(pk=workbook_id).rev
        tab(InsertRows, 1, 1)
        snapshot = protocol.snapshot(past.snapshot_at(workbook_id=workbook_id, rev=then, role="owner"))
        assert [(f["row"], f["col"], f["formula"]) for f in snapshot["sheets"][0]["formulas"]] == [(1, 2, "=A3")]
        assert formulas(workbook_id)[(1, 2)] == "=A4"

    def test_a_past_revision_shows_the_values_formulas_had_then(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1), (2, 1, 2), (3, 1, 3), (1, 2, "=A1*2"), (5, 2, "=SUM(A1:A3)"))
        then = Workbook.objects.get(pk=workbook_id).rev
        before = sheet_of(workbook_id)
        tab.put((1, 1, 5))
        tab(DeleteRows, (3,))  # the range's last row: rewritten to A1:A2
        snapshot = protocol.snapshot(past.snapshot_at(workbook_id=workbook_id, rev=then, role="owner"))["sheets"][0]
        assert snapshot["rows"] == before["rows"]
        assert snapshot["formulas"] == before["formulas"]
        assert formulas(workbook_id)[(5, 2)] == "=SUM(A1:A2)"

    @pytest.mark.parametrize("seed", [7, 11, 23])
    def test_every_past_revision_reads_as_it_was_seen(self, ada, workbook_id, seed):
        """Guarantee 7 with formulas: at each revision the snapshot is recorded; later, ?rev=R of each
        gives it back, whatever came after (edits, inserts, deletes, undos)."""
        rng = random.Random(seed)
        tab = Tab(workbook_id, ada)
        seen = {}
        texts = ["=A1+B2", "=SUM(A:A)", "=A3*2", "=IF(B1>2,C1,A2)", "=COUNT(A1:C5)", '=B4&"x"']
        for _ in range(40):
            sheet = sheet_of(workbook_id)
            rows, cols = [r["id"] for r in sheet["rows"]], [c["id"] for c in sheet["columns"]]
            roll = rng.random()
            if roll < 0.6 or len(rows) < 3:
                value = rng.choice([rng.randint(0, 9), rng.choice(texts), None])
                tab.put((rng.choice(rows), rng.choice(cols), value))
            elif roll < 0.7:
                tab(InsertRows, rng.choice([*rows, None]), 1)
            elif roll < 0.8:
                tab(DeleteRows, (rng.choice(rows),))
            elif roll < 0.85:
                tab(InsertCols, rng.choice([*cols, None]), 1)
            elif roll < 0.9 and len(cols) > 2:
                tab(DeleteCols, (rng.choice(cols),))
            else:
                try:
                    tab(Undo)
                except Conflict:
                    continue
            seen[Workbook.objects.get(pk=workbook_id).rev] = sheet_of(workbook_id)
        for rev, sheet in seen.items():
            then = protocol.snapshot(past.snapshot_at(workbook_id=workbook_id, rev=rev, role="owner"))["sheets"][0]
            assert (rev, then["rows"], then["formulas"]) == (rev, sheet["rows"], sheet["formulas"])
        assert stored_values(workbook_id) == recomputed(workbook_id)

    def test_restore_brings_back_formulas_and_their_values(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 2), (1, 2, "=A1*10"))
        then = Workbook.objects.get(pk=workbook_id).rev
        before = sheet_of(workbook_id)
        tab.put((1, 2, "=A1+1"), (1, 1, 7))
        tab(Restore, then)
        assert sheet_of(workbook_id)["rows"] == before["rows"]
        assert formulas(workbook_id) == {(1, 2): "=A1*10"}
        assert stored_values(workbook_id) == recomputed(workbook_id)

    def test_cell_history_gives_each_formula_as_it_read_and_a_set_at_that_revision_puts_it_back(self, ada, workbook_id):
        tab = Tab(workbook_id, ada)
        tab.put((3, 1, 5), (1, 2, "=A3"))
        first = Workbook.objects.get(pk=workbook_id).rev
        tab.put((1, 2, 8))
        tab(InsertRows, 1, 1)
        versions = past.cell_history(workbook_id=workbook_id, sheet=1, row=1, col=2)
        assert [(v.rev, v.formula, v.value) for v in versions] == [(first + 1, None, 8), (first, "=A3", 5)]
        entry = protocol.cell_versions(versions)["versions"][1]
        assert (entry["formula"], entry["computed"], "value" in entry) == ("=A3", 5, False)
        tab.put((1, 2, "=A3"), rev=first)  # what "Put back" sends
        assert formulas(workbook_id)[(1, 2)] == "=A4"


class ProcessesTest:
    def test_a_book_behind_another_process_catches_up_from_the_log(self, ada, workbook_id, monkeypatch):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1), (1, 2, "=A1+1"))
        rev, book = engines._books[workbook_id]
        engines._books.clear()
        tab.put((1, 1, 10), (2, 2, "=1/0"))  # "another process": this one's Book was elsewhere meanwhile
        tab(InsertRows, 1, 1)
        engines.keep(workbook_id, rev, book)  # the stale one is back, two revisions behind
        monkeypatch.setattr(engines, "load", None)  # caught up, not loaded again
        change = tab.put((1, 1, 100))
        monkeypatch.undo()
        assert change.data["computed"] == [{"sheet": 1, "row": 1, "col": 2, "value": 101}]
        assert stored_values(workbook_id) == recomputed(workbook_id)

    def test_a_failed_commit_does_not_leave_its_changes_in_memory(self, ada, workbook_id, monkeypatch):
        tab = Tab(workbook_id, ada)
        tab.put((1, 1, 1), (1, 2, "=A1+1"))

        def broken(*args, **kwargs):
            raise RuntimeError("the database went away")

        monkeypatch.setattr("workbooks.services.store.SetsTransaction.write_and_commit", broken)
        with pytest.raises(RuntimeError):
            tab.put((1, 1, 50))
        monkeypatch.undo()
        assert workbook_id not in engines._books
        assert tab.put((2, 1, 0)).data["computed"] == []
        assert shown(workbook_id)[1][:2] == [1, 2]


def test_stored_error_values_read_back_as_errors():
    assert from_wire_value({"error": "#N/A"}) == engine.XlError("#N/A")


# Formulas through both databases' SQL (PostgreSQL writes recomputed values in place with jsonb_set,
# SQLite with json_set): many formulas in a row, values recomputed in rows the edit did not name,
# structure changes and undo; what is stored must be what a fresh computation gives.
FORMULAS_SCENARIO = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from workbooks import protocol, selectors, services
from workbooks.domain.values import CellWrite, DeleteRows, FormulaText, InsertRows, SetCells, Undo
from workbooks.services import engines

user = get_user_model().objects.create_user(username="f", password="unused-pw")
workbook_id = services.create_workbook(user=user, name="F", rows=6, cols=4).id
count = 0
def apply(operation_type, *args):
    global count
    count += 1
    return services.commit_operation(workbook_id=workbook_id, user=user, operation=operation_type(f"op{count}", *args, session="s")).change
def put(*cells):
    return apply(SetCells, tuple(CellWrite(r, c, FormulaText(v) if isinstance(v, str) else v) for r, c, v in cells), None)
put(*[(r, 1, float(r)) for r in range(1, 7)])
put(*[(r, c, f"=A{r}*{c}+$A$1") for r in range(1, 7) for c in (2, 3, 4)])
changes = [put((1, 1, 10.0)), apply(InsertRows, 3, 1), put((4, 1, 100.0)), apply(DeleteRows, (2,)), apply(Undo, False)]
# Two edits committed together: values of one row written twice in one transaction.
both = services.commit_sets(workbook_id=workbook_id, requests=[
    (user, SetCells("b1", (CellWrite(5, 1, 5.5),), None)), (user, SetCells("b2", (CellWrite(1, 1, 1.5),), None))])
book = engines.load(workbook_id)
stored = {f"{k}": v for k, v in book.computed.items()}
book.recalculate_all()
print(json.dumps({
    "stored": stored,
    "fresh": {f"{k}": v for k, v in book.computed.items()},
    "computed": [len(c.data["computed"]) for c in changes] + [len(r.change.data["computed"]) for r in both],
    "snapshot": protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))["sheets"][0]["rows"],
}))
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_formulas_stored_on_each_database_are_what_a_fresh_computation_gives(database, request, tmp_path):
    result = support.scenario_result(database, request, tmp_path, FORMULAS_SCENARIO)
    assert result["stored"] == result["fresh"]
    assert result["computed"][0] == 18  # A1 changed: every formula names $A$1
    assert result["snapshot"][0]["values"][:4] == [1.5, 4.5, 6.0, 7.5]  # 1.5*2+1.5, 1.5*3+1.5, 1.5*4+1.5
