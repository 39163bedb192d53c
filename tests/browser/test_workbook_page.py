"""What people see on a workbook page, in Chromium, against a real Tabula server process.

Every wait is for something a person would see (a cell's text, the connection badge, a name in the
presence list); the API's snapshot and change log are the referee.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    PASTE_SCRIPT,
    cell,
    changes_since,
    context_menu,
    paste,
    paste_insert_delete_select,
    select_cell,
    settled,
    snapshot_values,
    type_into,
    wait_for_workbook,
    wait_until_showing,
)

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


def new_workbook(site, name, *, rows=20, cols=8, members=(("edgar", "editor"), ("vera", "viewer"))) -> tuple[int, object]:
    owner = site.api("olivia")
    status, snapshot = owner.request("POST", "/api/workbooks/", {"name": name, "rows": rows, "cols": cols})
    assert status == 201, snapshot
    for username, role in members:
        status, body = owner.request("PUT", f"/api/workbooks/{snapshot['id']}/members/{username}", {"role": role})
        assert status in (200, 201), body
    return snapshot["id"], owner


class TwoEditorsTest:
    def test_edits_pastes_and_row_changes_reach_the_other_page(self, site, pages):
        workbook_id, api = new_workbook(site, "Shared plans")
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)

        expect(olivia.locator("#presence li")).to_have_text(["edgar"])
        expect(edgar.locator("#presence li")).to_have_text(["olivia"])
        expect(olivia.locator("#grid .ht_master thead th").nth(1)).to_have_text("A")

        type_into(olivia, 1, 1, "hello")
        expect(cell(edgar, 1, 1)).to_have_text("hello")

        paste_insert_delete_select(api, workbook_id, olivia, edgar)


class ColumnsTest:
    def test_edits_land_in_the_right_cells_after_columns_come_and_go(self, site, pages):
        workbook_id, api = new_workbook(site, "Columns", rows=5, cols=4)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 1, "b")
        type_into(olivia, 0, 2, "c")
        expect(cell(edgar, 0, 2)).to_have_text("c")

        context_menu(edgar, 0, 1, "Insert 1 column left")
        expect(cell(olivia, 0, 2)).to_have_text("b")
        expect(cell(olivia, 0, 1)).to_have_text("")
        type_into(edgar, 0, 1, "new")
        paste(edgar, 1, 2, [["x", "y"]])
        expect(cell(olivia, 0, 1)).to_have_text("new")
        expect(cell(olivia, 1, 3)).to_have_text("y")

        context_menu(olivia, 0, 2, "Delete 1 column")
        expect(cell(edgar, 0, 2)).to_have_text("c")
        type_into(olivia, 0, 3, "last")
        expect(cell(edgar, 0, 3)).to_have_text("last")

        _, values = snapshot_values(api, workbook_id)
        assert values[0] == [None, "new", "c", "last"] and values[1] == [None, None, "y", None]
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)


class PasteTest:
    def test_a_paste_fills_a_larger_selection_and_grows_the_workbook_past_its_edge(self, site, pages):
        workbook_id, api = new_workbook(site, "Pastes", rows=5, cols=4)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        cell(olivia, 0, 0).click()
        cell(olivia, 1, 1).click(modifiers=["Shift"])
        olivia.evaluate(PASTE_SCRIPT, "z")
        paste(olivia, 4, 2, [["p", "q", "r"], ["s", "t", "u"]])
        expect(olivia.locator("#notice")).to_contain_text("The workbook grows by 1 row and 1 column to fit the paste.")
        expect(cell(edgar, 5, 4)).to_have_text("u")
        expect(cell(edgar, 1, 1)).to_have_text("z")
        _, values = snapshot_values(api, workbook_id)
        assert values == [
            ["z", "z", None, None, None],
            ["z", "z", None, None, None],
            [None] * 5,
            [None] * 5,
            [None, None, "p", "q", "r"],
            [None, None, "s", "t", "u"],
        ]
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)


class TypingTest:
    def test_remote_changes_never_overwrite_the_cell_being_typed_in(self, site, pages):
        workbook_id, api = new_workbook(site, "Busy")
        edgar = pages("edgar", workbook_id)
        status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
        row_ids = [r["id"] for r in snapshot["sheets"][0]["rows"]]
        col_ids = [c["id"] for c in snapshot["sheets"][0]["columns"]]

        def remote(op: dict) -> None:
            status, body = api.request("POST", f"/api/workbooks/{workbook_id}/ops", op)
            assert status == 201, body

        editor = edgar.locator(".handsontableInputHolder textarea")
        cell(edgar, 3, 1).dblclick()
        edgar.keyboard.type("my words")
        remote({"type": "insert_rows", "op": "rows-above", "before": row_ids[0], "count": 2})
        remote({"type": "set", "op": "same-cell", "cells": [{"row": row_ids[3], "col": col_ids[1], "value": "theirs"}]})
        remote({"type": "set", "op": "elsewhere", "cells": [{"row": row_ids[9], "col": col_ids[5], "value": "signal"}]})
        expect(cell(edgar, 11, 5)).to_have_text("signal")  # every change before it is applied too
        expect(editor).to_be_visible()
        expect(editor).to_have_value("my words")

        edgar.keyboard.type(", finished")
        edgar.keyboard.press("Enter")
        expect(cell(edgar, 5, 1)).to_have_text("my words, finished")
        _, values = snapshot_values(api, workbook_id)
        wait_until_showing(edgar, values)
        assert values[5][1] == "my words, finished"

        cell(edgar, 7, 2).dblclick()
        edgar.keyboard.type("second thoughts")
        remote({"type": "set", "op": "while-unsure", "cells": [{"row": row_ids[5], "col": col_ids[2], "value": "theirs again"}]})
        remote({"type": "set", "op": "signal-2", "cells": [{"row": row_ids[9], "col": col_ids[5], "value": "signal 2"}]})
        expect(cell(edgar, 11, 5)).to_have_text("signal 2")
        expect(editor).to_have_value("second thoughts")
        edgar.keyboard.press("Escape")  # abandoning the edit uncovers the value that arrived meanwhile
        expect(cell(edgar, 7, 2)).to_have_text("theirs again")


class TooLongValueTest:
    def test_a_pasted_cell_over_the_limit_is_refused_and_the_others_arrive(self, site, pages):
        workbook_id, api = new_workbook(site, "Long text")
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 1, "kept")
        expect(cell(edgar, 0, 1)).to_have_text("kept")
        rev, _ = snapshot_values(api, workbook_id)

        paste(olivia, 0, 0, [["short", "x" * 10_001, "also short"]])
        expect(cell(edgar, 0, 2)).to_have_text("also short")
        expect(olivia.locator("#notice")).to_have_text("1 cell not pasted: a cell holds at most 10,000 characters.")
        expect(cell(olivia, 0, 1)).to_have_text("kept")  # the page shows what the server has
        expect(cell(edgar, 0, 1)).to_have_text("kept")
        (change,) = changes_since(api, workbook_id, rev)
        assert [(c["col"], c["value"]) for c in change["cells"]] == [(1, "short"), (3, "also short")]


class ViewerTest:
    def test_viewer_cannot_change_the_workbook_but_sees_changes_live(self, site, pages):
        workbook_id, api = new_workbook(site, "Read only for Vera")
        vera = pages("vera", workbook_id)
        olivia = pages("olivia", workbook_id)
        expect(vera.locator("#role")).to_have_text("viewer")

        type_into(vera, 0, 0, "not allowed")
        cell(vera, 0, 1).dblclick()
        vera.keyboard.type("nor this")
        vera.keyboard.press("Enter")
        expect(vera.locator(".handsontableInputHolder textarea")).to_be_hidden()
        cell(vera, 2, 2).click(button="right")
        expect(vera.locator(".htContextMenu td").filter(has_text="Insert")).to_have_count(0)
        vera.keyboard.press("Escape")

        type_into(olivia, 3, 3, "from the owner")
        expect(cell(vera, 3, 3)).to_have_text("from the owner")
        expect(cell(vera, 0, 0)).to_have_text("")
        expect(cell(vera, 0, 1)).to_have_text("")
        assert [c["by"]["name"] for c in changes_since(api, workbook_id, 0)] == ["olivia"]

        status, body = api.request("PATCH", f"/api/workbooks/{workbook_id}/", {"name": "Renamed for everyone"})
        assert status == 200, body
        expect(vera.locator("#workbook-name")).to_have_text("Renamed for everyone")
        expect(vera).to_have_title("Renamed for everyone · Tabula")


class MarkupInCellsTest:
    def test_markup_typed_into_a_cell_shows_as_text_and_runs_nothing(self, site, pages):
        workbook_id, api = new_workbook(site, "Markup")
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        dialogs = []
        for page in (olivia, edgar):
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

        type_into(olivia, 0, 0, XSS)
        status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
        script_cell = {
            "row": snapshot["sheets"][0]["rows"][2]["id"],
            "col": snapshot["sheets"][0]["columns"][1]["id"],
            "value": "<script>window.pwned = 1</script>",
        }
        status, body = api.request("POST", f"/api/workbooks/{workbook_id}/ops", {"type": "set", "op": "script-cell", "cells": [script_cell]})
        assert status == 201, body

        expect(cell(edgar, 0, 0)).to_have_text(XSS)
        expect(cell(edgar, 2, 1)).to_have_text("<script>window.pwned = 1</script>")
        edgar.reload()
        expect(edgar.locator("#connection")).to_have_attribute("data-state", "live")
        expect(cell(edgar, 0, 0)).to_have_text(XSS)
        for page in (olivia, edgar):
            assert page.locator("#grid img").count() == 0
            assert page.locator("#grid td script").count() == 0
            assert page.evaluate("window.pwned") is None
        assert dialogs == []


class TypedValuesTest:
    def test_numbers_and_booleans_are_stored_as_typed_and_an_apostrophe_keeps_text(self, site, pages):
        workbook_id, api = new_workbook(site, "Typed", members=(("edgar", "editor"),))
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        typed = ["42", "-3.5", "1e6", "'42", "true", "12345678901234567890", "'=1+1"]
        for row, text in enumerate(typed):
            type_into(olivia, row, 0, text)
        settled(olivia)
        rev, values = snapshot_values(api, workbook_id)
        assert [row[0] if row else None for row in values[: len(typed)]] == [42, -3.5, 1000000, "42", True, "12345678901234567890", "=1+1"]

        # Shown as a spreadsheet shows them, on the other page too: numbers right, TRUE centred, text left.
        expect(cell(edgar, 4, 0)).to_have_text("TRUE")
        expect(cell(edgar, 0, 0)).to_have_css("text-align", "right")
        expect(cell(edgar, 4, 0)).to_have_css("text-align", "center")
        for alignment in ("right", "center"):
            expect(cell(edgar, 3, 0)).not_to_have_css("text-align", alignment)

        # The editor opens with what gives the value back ('42 for the text 42): closing it changes nothing.
        for row, shown in ((3, "'42"), (0, "42"), (4, "TRUE"), (6, "'=1+1")):
            select_cell(edgar, row, 0)
            edgar.keyboard.press("Enter")
            expect(edgar.locator("textarea.handsontableInput")).to_have_value(shown)
            edgar.keyboard.press("Enter")
        settled(edgar)
        assert snapshot_values(api, workbook_id) == (rev, values)

        # A paste reads each cell as typing would.
        paste(olivia, 10, 0, [["7", "'7", "FALSE", "x"]])
        settled(olivia)
        assert snapshot_values(api, workbook_id)[1][10][:4] == [7, "7", False, "x"]


class FormulasTest:
    def test_a_formula_typed_in_one_page_computes_in_every_page_and_follows_its_cells(self, site, pages):
        workbook_id, api = new_workbook(site, "Sums", members=(("edgar", "editor"),))
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 0, "4")
        type_into(olivia, 1, 0, "6")
        type_into(olivia, 2, 0, "=SUM(A1:A2)*10")
        expect(cell(olivia, 2, 0)).to_have_text("100")
        expect(cell(edgar, 2, 0)).to_have_text("100")
        expect(cell(edgar, 2, 0)).to_have_css("text-align", "right")

        # An edit elsewhere recomputes it in every page.
        type_into(edgar, 0, 0, "5")
        expect(cell(olivia, 2, 0)).to_have_text("110")

        # The editor opens with the formula; rows inserted above move its text, not what it names.
        status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
        first_row = snapshot["sheets"][0]["rows"][0]["id"]
        above = {"type": "insert_rows", "op": "above", "before": first_row, "count": 1}
        status, body = api.request("POST", f"/api/workbooks/{workbook_id}/ops", above)
        assert status == 201, body
        expect(cell(edgar, 3, 0)).to_have_text("110")
        select_cell(edgar, 3, 0)
        edgar.keyboard.press("Enter")
        expect(edgar.locator("textarea.handsontableInput")).to_have_value("=SUM(A2:A3)*10")
        edgar.keyboard.press("Escape")

        # An error shows as Excel shows it, with why in its tooltip.
        type_into(olivia, 5, 1, "=1/0")
        expect(cell(edgar, 5, 1)).to_have_text("#DIV/0!")
        type_into(olivia, 6, 1, "=NOSUCH(1)")
        expect(cell(edgar, 6, 1)).to_have_attribute("title", re.compile("unknown function NOSUCH"))
        settled(olivia)
        settled(edgar)


class FormulaBarTest:
    def test_the_bar_shows_the_selected_cell_and_edits_it_with_function_names_suggested(self, site, pages):
        workbook_id, api = new_workbook(site, "Bar", members=(("edgar", "editor"),))
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        name, field = olivia.locator("#cell-name"), olivia.get_by_role("textbox", name="Contents of the selected cell")
        type_into(olivia, 0, 0, "3")
        type_into(olivia, 1, 0, "'42")
        select_cell(olivia, 1, 0)
        expect(name).to_have_text("A2")
        expect(field).to_have_value("'42")  # as its editor opens: the text 42

        select_cell(olivia, 2, 0)
        field.click()
        field.type("=su")
        suggestions = olivia.get_by_role("listbox", name="Functions").first
        expect(suggestions.get_by_role("option").first).to_contain_text("SUBSTITUTE(text, old_text, new_text, [instance_num])")
        expect(suggestions.get_by_role("option", name=re.compile(r"^SUM\(number1"))).to_be_visible()
        field.press("ArrowDown")  # SUBSTITUTE, SUM, ...: the second
        field.press("Tab")
        expect(field).to_have_value("=SUM(")
        field.type("A1:A2)*2")
        field.press("Enter")
        expect(cell(edgar, 2, 0)).to_have_text("6")
        expect(name).to_have_text("A4")  # Enter moved down, as in a spreadsheet
        select_cell(olivia, 2, 0)
        expect(field).to_have_value("=SUM(A1:A2)*2")

        # The cell's own editor suggests too; Tab takes the suggestion, not the next cell.
        select_cell(olivia, 3, 1)
        olivia.keyboard.type("=AVERAGEI")
        expect(olivia.locator("#editor-suggestions").get_by_role("option").first).to_contain_text("AVERAGEIF(range, criteria, [average_range])")
        olivia.keyboard.press("Tab")
        olivia.keyboard.type('A1:A3,">1")')
        olivia.keyboard.press("Enter")
        expect(cell(edgar, 3, 1)).to_have_text("4.5")  # 3 and 6: the text "42" is no number
        settled(olivia)


class PointingTest:
    def test_clicking_cells_while_typing_a_formula_puts_their_references_in_coloured_on_the_grid(self, site, pages):
        workbook_id, api = new_workbook(site, "Pointing")
        olivia = pages("olivia", workbook_id)
        for row, number in enumerate(("1", "2", "3")):
            type_into(olivia, row, 0, number)
        type_into(olivia, 0, 1, "10")
        editor = olivia.locator("textarea.handsontableInput")

        select_cell(olivia, 4, 2)
        olivia.keyboard.type("=SUM(")
        olivia.mouse.move(*centre(cell(olivia, 0, 0)))
        olivia.mouse.down()
        olivia.mouse.move(*centre(cell(olivia, 2, 0)), steps=4)
        olivia.mouse.up()
        expect(editor).to_have_value("=SUM(A1:A3")
        olivia.keyboard.type(")*")
        cell(olivia, 0, 1).click()
        cell(olivia, 0, 1).click()  # the next click replaces what the last one put
        expect(editor).to_have_value("=SUM(A1:A3)*B1")
        # Each reference in its colour: A1:A3 the first, B1 the second.
        expect(cell(olivia, 1, 0)).to_have_css("box-shadow", re.compile(r"rgb\(26, 115, 232\)"))
        expect(cell(olivia, 0, 1)).to_have_css("box-shadow", re.compile(r"rgb\(217, 48, 37\)"))
        olivia.keyboard.press("Enter")
        expect(cell(olivia, 4, 2)).to_have_text("60")
        expect(cell(olivia, 1, 0)).to_have_css("box-shadow", "none")

        # From the formula bar too.
        select_cell(olivia, 5, 2)
        field = olivia.get_by_role("textbox", name="Contents of the selected cell")
        field.click()
        field.type("=")
        cell(olivia, 2, 0).click()
        field.type("*2")
        expect(field).to_have_value("=A3*2")
        field.press("Enter")
        expect(cell(olivia, 5, 2)).to_have_text("6")
        settled(olivia)


def centre(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


class FillAndCopyFormulasTest:
    def test_the_fill_handle_and_copy_paste_move_relative_references_as_spreadsheets_do(self, site, pages):
        workbook_id, api = new_workbook(site, "Fill")
        olivia = pages("olivia", workbook_id)
        for row, number in enumerate(("1", "2", "3", "4")):
            type_into(olivia, row, 0, number)
        type_into(olivia, 0, 1, "=A1*$A$1*10")
        expect(cell(olivia, 0, 1)).to_have_text("10")

        select_cell(olivia, 0, 1)
        olivia.locator("#grid .ht_master .wtBorder.current.corner").drag_to(cell(olivia, 2, 1))
        expect(cell(olivia, 2, 1)).to_have_text("30")
        settled(olivia)
        status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
        texts = sorted(f["formula"] for f in snapshot["sheets"][0]["formulas"])
        assert texts == ["=A1*$A$1*10", "=A2*$A$1*10", "=A3*$A$1*10"]

        select_cell(olivia, 2, 1)
        olivia.keyboard.press("Control+c")
        paste(olivia, 3, 2, [["30"]])  # the clipboard's text: what the copy put there
        expect(cell(olivia, 3, 2)).to_have_text("0")  # one row down and one column right: B4, empty
        select_cell(olivia, 3, 2)
        expect(olivia.get_by_role("textbox", name="Contents of the selected cell")).to_have_value("=B4*$A$1*10")
        paste(olivia, 5, 0, [["30"]])  # again, one column left of B: off the sheet, as a spreadsheet says it
        expect(cell(olivia, 5, 0)).to_have_text("#REF!")
        paste(olivia, 6, 0, [["7"]])  # text from elsewhere (not what was copied here) is read as typed
        expect(cell(olivia, 6, 0)).to_have_text("7")
        settled(olivia)


class AccessRemovedTest:
    def test_a_removed_member_is_told_and_can_no_longer_edit(self, site, pages):
        workbook_id, api = new_workbook(site, "Leaving")
        edgar = pages("edgar", workbook_id)

        status, body = api.request("DELETE", f"/api/workbooks/{workbook_id}/members/edgar")
        assert status == 200, body
        expect(edgar.locator("#notice")).to_have_text("Your access to this workbook was removed.")
        expect(edgar.locator("#connection")).to_have_attribute("data-state", "offline")
        type_into(edgar, 0, 0, "too late")
        expect(cell(edgar, 0, 0)).to_have_text("")


class ServerRestartTest:
    def test_edits_made_while_the_server_is_down_arrive_after_it_restarts(self, site, pages):
        workbook_id, api = new_workbook(site, "Outage")
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 0, "before")
        expect(cell(edgar, 0, 0)).to_have_text("before")

        site.server.stop()
        try:
            expect(olivia.locator("#connection")).not_to_have_attribute("data-state", "live")
            type_into(olivia, 1, 0, "while down 1")
            type_into(olivia, 2, 0, "while down 2")
            type_into(edgar, 4, 4, "edgar offline")
            expect(olivia.locator("#connection")).to_have_text("offline — 2 edits waiting")
            expect(olivia.locator("#connection")).to_have_attribute("data-state", "offline")
            expect(edgar.locator("#connection")).to_have_text("offline — 1 edit waiting")
            expect(cell(olivia, 1, 0)).to_have_text("while down 1")  # still shown, not lost
        finally:
            site.server.start()

        for page in (olivia, edgar):
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(cell(edgar, 2, 0)).to_have_text("while down 2")
        expect(cell(olivia, 4, 4)).to_have_text("edgar offline")

        _, values = snapshot_values(api, workbook_id)
        assert [values[0][0], values[1][0], values[2][0], values[4][4]] == ["before", "while down 1", "while down 2", "edgar offline"]
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)
        assert len(changes_since(api, workbook_id, 0)) == 4, "each edit applied once"


class PresenceTest:
    def test_everyone_elses_name_and_selection_show_in_their_colour(self, site, pages, tmp_path):
        """Also the picture in docs/screenshot.png: TABULA_SCREENSHOT=docs/screenshot.png refreshes it."""
        workbook_id, _ = new_workbook(site, "Q3 budget", rows=40, cols=12)
        rows = [
            ["Team", "July", "August", "September", "Total"],
            ["Design", "4200", "3900", "4400", "12500"],
            ["Engineering", "18300", "17650", "19020", "54970"],
            ["Marketing", "6100", "7300", "5200", "18600"],
            ["Support", "3100", "3050", "3300", "9450"],
            ["Travel", "1200", "800", "2100", "4100"],
        ]
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        vera = pages("vera", workbook_id)
        paste(olivia, 1, 1, rows)
        expect(cell(edgar, 6, 5)).to_have_text("4100")
        cell(edgar, 3, 2).click()
        edgar.keyboard.down("Shift")
        cell(edgar, 4, 4).click()
        edgar.keyboard.up("Shift")
        cell(vera, 6, 1).click()
        expect(olivia.locator("#presence li")).to_have_text(["edgar", "vera"])
        expect(olivia.locator("#grid td.remote-selection")).to_have_count(7)
        cell(olivia, 8, 1).click()
        olivia.keyboard.type("Notes: travel is under review")
        chips = olivia.locator("#presence li")
        assert chips.nth(0).evaluate("li => getComputedStyle(li).backgroundColor") != chips.nth(1).evaluate(
            "li => getComputedStyle(li).backgroundColor"
        )
        path = Path(os.environ.get("TABULA_SCREENSHOT") or tmp_path / "workbook.png")
        olivia.screenshot(path=str(path))
        assert path.stat().st_size > 0

        highlighted = re.compile(r"\bremote-selection\b")
        context_menu(olivia, 0, 0, "Insert 1 row above")  # edgar's selection is held by ids: it moves down
        expect(cell(olivia, 5, 4)).to_have_class(highlighted)
        expect(cell(olivia, 3, 2)).not_to_have_class(highlighted)
        expect(olivia.locator("#grid td.remote-selection")).to_have_count(7)


class SnapshotPreloadTest:
    def test_the_snapshot_is_fetched_once_by_the_preload_while_the_scripts_load(self, site, pages):
        workbook_id, _ = new_workbook(site, "Preloaded")
        type_into(pages("olivia", workbook_id), 1, 1, "kept")
        page = pages("edgar", workbook_id)

        page.reload()
        wait_for_workbook(page)

        fetched_by = page.evaluate(
            "url => performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === url).map(e => e.initiatorType)",
            f"/api/workbooks/{workbook_id}/",
        )
        assert fetched_by == ["link"]  # the <link rel=preload>; main.js's own fetch would say "fetch"
        expect(cell(page, 1, 1)).to_have_text("kept")
