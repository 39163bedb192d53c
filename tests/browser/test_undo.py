"""Undo and redo on the workbook page, as spreadsheet users expect them: Ctrl+Z takes back what this tab
did (never another person's work, nor another tab's), Ctrl+Y puts it back; deleted rows come back with
their values; the toolbar and the context menu do the same; viewers get none of it. In Chromium against
the embedded server, with the server's snapshot and change log as the referee.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    cell,
    changes_since,
    context_menu,
    paste,
    press_in_grid,
    select_cell,
    settled,
    snapshot_values,
    type_into,
    wait_for_workbook,
    wait_until_showing,
)
from tests.browser.test_workbook_page import new_workbook

pytestmark = pytest.mark.browser

UNDO = "Control+z"
REDO = "Control+y"


def open_tab(page, base_url: str, workbook_id: int):
    """A second tab of the same browser (its cookies, a sessionStorage of its own) on the workbook."""
    tab = page.context.new_page()
    tab.goto(f"{base_url}/workbooks/{workbook_id}/")
    wait_for_workbook(tab)
    return tab


class UndoOwnTabTest:
    def test_ctrl_z_takes_back_this_tabs_edit_only_and_ctrl_y_puts_it_back(self, site, pages):
        workbook_id, api = new_workbook(site, "Undo per tab", rows=6, cols=4)
        first = pages("olivia", workbook_id)
        second = open_tab(first, site.base_url, workbook_id)
        edgar = pages("edgar", workbook_id)
        assert first.evaluate("window.tabula.tabSession") != second.evaluate("window.tabula.tabSession")

        type_into(first, 0, 0, "first tab")
        type_into(second, 0, 1, "second tab")
        type_into(edgar, 0, 2, "edgar")
        for page in (first, second, edgar):
            expect(cell(page, 0, 2)).to_have_text("edgar")
            expect(cell(page, 0, 0)).to_have_text("first tab")
        rev, _ = snapshot_values(api, workbook_id)

        press_in_grid(first, UNDO, 3, 3)  # the newest edit on the workbook is edgar's, then the second tab's
        for page in (first, second, edgar):
            expect(cell(page, 0, 0)).to_have_text("")
        _, values = snapshot_values(api, workbook_id)
        assert values[0] == [None, "second tab", "edgar", None]
        for page in (first, second, edgar):
            wait_until_showing(page, values)
        (batch,) = changes_since(api, workbook_id, rev)
        assert (batch["kind"], batch["by"]["name"], batch["skipped"]) == ("batch", "olivia", [])
        assert batch["undo_of"] == rev - 2

        first.keyboard.press(REDO)
        for page in (first, second, edgar):
            expect(cell(page, 0, 0)).to_have_text("first tab")
        _, values = snapshot_values(api, workbook_id)
        assert values[0] == ["first tab", "second tab", "edgar", None]
        for page in (first, second, edgar):
            wait_until_showing(page, values)

        # Ctrl+Shift+Z redoes too; edgar's Ctrl+Z is his own.
        first.keyboard.press(UNDO)
        expect(cell(edgar, 0, 0)).to_have_text("")
        first.keyboard.press("Control+Shift+z")
        expect(cell(edgar, 0, 0)).to_have_text("first tab")
        press_in_grid(edgar, UNDO)
        for page in (first, second, edgar):
            expect(cell(page, 0, 2)).to_have_text("")
        _, values = snapshot_values(api, workbook_id)
        assert values[0] == ["first tab", "second tab", None, None]
        for page in (first, second, edgar):
            wait_until_showing(page, values)

    def test_a_reload_keeps_the_tabs_undo_and_what_others_changed_since_is_left(self, site, pages):
        workbook_id, api = new_workbook(site, "Undo after reload", rows=6, cols=4)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        session = olivia.evaluate("window.tabula.tabSession")
        paste(olivia, 1, 0, [["mine", "also mine"]])
        expect(cell(edgar, 1, 1)).to_have_text("also mine")
        type_into(edgar, 1, 1, "edgar's since")
        expect(cell(olivia, 1, 1)).to_have_text("edgar's since")

        olivia.reload()
        wait_for_workbook(olivia)
        assert olivia.evaluate("window.tabula.tabSession") == session
        press_in_grid(olivia, UNDO, 4, 3)

        expect(olivia.locator("#notice")).to_have_text(
            "Undone, except 1 cell changed since by someone else (or in another tab): it was left as it is."
        )
        expect(cell(edgar, 1, 0)).to_have_text("")
        _, values = snapshot_values(api, workbook_id)
        assert values[1] == [None, "edgar's since", None, None]
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)


class UndoStructureTest:
    def test_a_deleted_row_and_column_come_back_with_their_values(self, site, pages):
        workbook_id, api = new_workbook(site, "Undo deletes", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        paste(olivia, 0, 0, [["a1", "b1", "c1"], ["a2", "b2", "c2"], ["a3", "b3", "c3"]])
        expect(cell(edgar, 2, 2)).to_have_text("c3")
        settled(olivia)
        status, before = api.request("GET", f"/api/workbooks/{workbook_id}/")
        assert status == 200, before

        context_menu(olivia, 1, 1, "Delete 1 row")
        expect(cell(edgar, 1, 0)).to_have_text("a3")
        type_into(edgar, 3, 2, "edgar meanwhile")
        expect(cell(olivia, 3, 2)).to_have_text("edgar meanwhile")

        press_in_grid(olivia, UNDO, 0, 0)
        for page in (olivia, edgar):
            expect(cell(page, 1, 0)).to_have_text("a2")
            expect(cell(page, 2, 0)).to_have_text("a3")
            expect(cell(page, 4, 2)).to_have_text("edgar meanwhile")
        status, after = api.request("GET", f"/api/workbooks/{workbook_id}/")
        assert [r["id"] for r in after["sheets"][0]["rows"]] == [r["id"] for r in before["sheets"][0]["rows"]], (
            "the row is back where it was, with its id"
        )
        assert after["sheets"][0]["rows"][1]["values"] == ["a2", "b2", "c2"]
        _, values = snapshot_values(api, workbook_id)
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)

        context_menu(olivia, 0, 1, "Delete 1 column")
        expect(cell(edgar, 0, 1)).to_have_text("c1")
        press_in_grid(olivia, UNDO, 0, 0)
        for page in (olivia, edgar):
            expect(cell(page, 0, 1)).to_have_text("b1")
            expect(cell(page, 2, 2)).to_have_text("c3")
            expect(page.locator("#grid .ht_master thead th").nth(3)).to_have_text("C")
        _, values = snapshot_values(api, workbook_id)
        assert values[:3] == [["a1", "b1", "c1"], ["a2", "b2", "c2"], ["a3", "b3", "c3"]]
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)

        olivia.keyboard.press(REDO)  # deletes the column again
        for page in (olivia, edgar):
            expect(cell(page, 0, 1)).to_have_text("c1")
        _, values = snapshot_values(api, workbook_id)
        assert len(values[0]) == 2
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)

    def test_a_paste_that_grew_the_workbook_is_undone_as_one_step(self, site, pages):
        workbook_id, api = new_workbook(site, "Undo a paste", rows=3, cols=2)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 0, "kept")
        paste(olivia, 2, 0, [["p", "q", "r"], ["s", "t", "u"]])
        expect(cell(edgar, 3, 2)).to_have_text("u")
        settled(olivia)
        rev, _ = snapshot_values(api, workbook_id)
        assert [c["kind"] for c in changes_since(api, workbook_id, rev - 4)] == ["set", "insert_cols", "insert_rows", "set"]

        press_in_grid(olivia, UNDO, 0, 1)
        olivia.wait_for_function("() => window.tabula.grid.hot.countRows() === 3 && window.tabula.grid.hot.countCols() === 2")
        _, values = snapshot_values(api, workbook_id)
        assert values == [["kept", None], [None, None], [None, None]]
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)
        assert [c["kind"] for c in changes_since(api, workbook_id, rev)] == ["batch"]


class ControlsTest:
    def test_toolbar_buttons_and_the_context_menu_undo_and_redo(self, site, pages):
        workbook_id, api = new_workbook(site, "Buttons", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        undo = olivia.get_by_role("button", name="Undo", exact=True)
        redo = olivia.get_by_role("button", name="Redo", exact=True)
        expect(undo).to_have_attribute("title", "Undo (Ctrl+Z)")
        expect(redo).to_have_attribute("title", "Redo (Ctrl+Y)")

        type_into(olivia, 1, 1, "button test")
        expect(cell(edgar, 1, 1)).to_have_text("button test")
        undo.click()
        expect(cell(edgar, 1, 1)).to_have_text("")
        redo.click()
        expect(cell(edgar, 1, 1)).to_have_text("button test")
        olivia.keyboard.press(UNDO)  # a click on a button leaves the keyboard with the grid
        expect(cell(edgar, 1, 1)).to_have_text("")

        redo.focus()  # and the buttons work from the keyboard
        olivia.keyboard.press("Enter")
        expect(cell(edgar, 1, 1)).to_have_text("button test")

        select_cell(olivia, 2, 2)
        cell(olivia, 2, 2).click(button="right")
        items = olivia.locator(".htContextMenu tbody td")
        expect(items.nth(0)).to_contain_text("Undo")
        expect(items.nth(1)).to_contain_text("Redo")
        items.nth(0).click()
        expect(cell(edgar, 1, 1)).to_have_text("")
        context_menu(olivia, 2, 2, "Redo")
        expect(cell(edgar, 1, 1)).to_have_text("button test")
        _, values = snapshot_values(api, workbook_id)
        assert values[1][1] == "button test"
        wait_until_showing(olivia, values)

    def test_a_viewer_has_no_undo(self, site, pages):
        workbook_id, api = new_workbook(site, "Viewer undo", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        vera = pages("vera", workbook_id)
        type_into(olivia, 0, 0, "by olivia")
        expect(cell(vera, 0, 0)).to_have_text("by olivia")
        rev, _ = snapshot_values(api, workbook_id)

        expect(vera.locator("#history")).to_be_hidden()
        expect(vera.get_by_role("button", name="Undo")).to_have_count(0)
        cell(vera, 1, 1).click(button="right")
        expect(vera.locator(".htContextMenu td").filter(has_text="Copy")).to_have_count(1)
        expect(vera.locator(".htContextMenu td").filter(has_text="Undo")).to_have_count(0)
        vera.keyboard.press("Escape")
        press_in_grid(vera, UNDO, 0, 0)
        vera.keyboard.press(REDO)
        assert vera.evaluate("window.tabula.edits.waiting") == 0
        vera.wait_for_timeout(500)
        expect(vera.locator("#notice")).to_be_hidden()
        assert snapshot_values(api, workbook_id)[0] == rev
        expect(cell(vera, 0, 0)).to_have_text("by olivia")


class NothingToUndoTest:
    def test_nothing_to_undo_or_redo_says_so_and_changes_nothing(self, site, pages):
        workbook_id, api = new_workbook(site, "Nothing yet", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(edgar, 0, 0, "edgar's")
        expect(cell(olivia, 0, 0)).to_have_text("edgar's")
        rev, values = snapshot_values(api, workbook_id)

        press_in_grid(olivia, UNDO, 2, 2)
        expect(olivia.locator("#notice")).to_have_text("Nothing to undo")
        olivia.keyboard.press(REDO)
        expect(olivia.locator("#notice")).to_have_text("Nothing to redo")
        settled(olivia)
        assert snapshot_values(api, workbook_id) == (rev, values)
        wait_until_showing(olivia, values)
        expect(cell(edgar, 0, 0)).to_have_text("edgar's")

    def test_ctrl_z_in_an_open_editor_undoes_typing_not_the_workbook(self, site, pages):
        workbook_id, api = new_workbook(site, "Typing", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        type_into(olivia, 0, 0, "saved")
        settled(olivia)
        rev, _ = snapshot_values(api, workbook_id)

        editor = olivia.locator(".handsontableInputHolder textarea")
        cell(olivia, 1, 1).dblclick()
        olivia.keyboard.type("draft")
        olivia.keyboard.press(UNDO)
        expect(editor).to_be_visible()
        expect(editor).not_to_have_value("draft")  # the browser took back the typing
        olivia.keyboard.press("Escape")
        olivia.wait_for_timeout(500)
        assert olivia.evaluate("window.tabula.edits.waiting") == 0
        assert snapshot_values(api, workbook_id)[0] == rev
        expect(cell(olivia, 0, 0)).to_have_text("saved")


class OfflineUndoTest:
    def test_an_undo_made_offline_waits_behind_the_edits_before_it_and_all_keep_the_tabs_session(self, site, pages):
        workbook_id, api = new_workbook(site, "Offline undo", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        session = olivia.evaluate("window.tabula.tabSession")
        type_into(olivia, 0, 0, "online")
        settled(olivia)
        reachable = []
        olivia.route_web_socket("**/ws/**", lambda ws: ws.connect_to_server() if reachable else None)
        olivia.evaluate("window.tabula.socket.ws.close()")
        expect(olivia.locator("#connection")).not_to_have_attribute("data-state", "live")

        type_into(olivia, 1, 0, "offline")
        press_in_grid(olivia, UNDO, 3, 2)
        expect(olivia.locator("#notice")).to_have_text("Undo waits for the connection to come back.")
        expect(olivia.locator("#connection")).to_have_text("offline — 2 edits waiting")
        stored = olivia.evaluate(
            "Object.keys(localStorage).filter(k => k.startsWith('tabula.outbox/') && !k.endsWith('/tab'))"
            ".flatMap(k => JSON.parse(localStorage.getItem(k)).entries.map(e => e.message))"
        )
        assert [(m["type"], m["session"]) for m in stored] == [("set", session), ("undo", session)]

        reachable.append(True)
        settled(olivia)
        _, values = snapshot_values(api, workbook_id)
        assert [values[0][0], values[1][0]] == ["online", None], "the undo took back the edit made offline"
        wait_until_showing(olivia, values)
