"""Sheets (tabs) on the workbook page, as spreadsheet users expect them: a tab bar along the bottom of the
grid; "+" adds a sheet, a double-click renames one in place, a drag reorders, the tab's menu deletes one
(asking first) and Ctrl+Z brings it back with its cells; every change shows live in the other pages;
the page's address names the sheet shown. In Chromium against the embedded server, with the server's
snapshot as the referee.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    cell,
    press_in_grid,
    select_cell,
    settled,
    type_into,
    wait_for_workbook,
)
from tests.browser.test_history import cell_history, open_versions, past_cell
from tests.browser.test_undo import UNDO
from tests.browser.test_workbook_page import new_workbook

pytestmark = pytest.mark.browser

RENAME_BOX = re.compile("^New name of the sheet")


def screenshot(page, name: str) -> None:
    """Keeps what the page looks like, for a person to look at, when TABULA_SCREENSHOTS names a folder."""
    folder = os.environ.get("TABULA_SCREENSHOTS")
    if folder:
        page.screenshot(path=Path(folder) / f"{name}.png")


def tab(page, name: str):
    return page.get_by_role("tab", name=name, exact=True)


def tabs(page):
    return page.get_by_role("tablist", name="Sheets").get_by_role("tab")


def sheets(api, workbook_id) -> list[dict]:
    status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
    assert status == 200, snapshot
    return snapshot["sheets"]


def operation(api, workbook_id, op: dict) -> dict:
    status, change = api.request("POST", f"/api/workbooks/{workbook_id}/ops", op)
    assert status == 201, change
    return change


def rename_by_double_click(page, old: str, new: str) -> None:
    tab(page, old).dblclick()
    box = page.get_by_role("textbox", name=RENAME_BOX)
    expect(box).to_have_value(old)
    box.fill(new)
    box.press("Enter")


def delete_from_menu(page, name: str) -> None:
    """Right-clicks a tab, picks Delete and accepts the question it asks."""
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    tab(page, name).click(button="right")
    page.get_by_role("menuitem", name="Delete").click()
    expect(tab(page, name)).to_have_count(0)
    assert questions == [f"Delete the sheet “{name}” and everything in it? Ctrl+Z brings it back."]


class TwoEditorsTabsTest:
    def test_add_rename_type_reorder_delete_and_undo_show_in_the_other_page(self, site, pages):
        workbook_id, api = new_workbook(site, "Tabs", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        expect(tabs(olivia)).to_have_text(["Sheet1"])
        expect(tab(olivia, "Sheet1")).to_have_attribute("aria-selected", "true")

        olivia.get_by_role("button", name="New sheet").click()
        expect(tabs(olivia)).to_have_text(["Sheet1", "Sheet2"])
        expect(tab(olivia, "Sheet2")).to_have_attribute("aria-selected", "true")  # a new tab is shown
        expect(tabs(edgar)).to_have_text(["Sheet1", "Sheet2"])
        expect(tab(edgar, "Sheet1")).to_have_attribute("aria-selected", "true")  # the other page stays where it is

        rename_by_double_click(olivia, "Sheet2", "Plans")
        expect(tabs(olivia)).to_have_text(["Sheet1", "Plans"])
        expect(tabs(edgar)).to_have_text(["Sheet1", "Plans"])
        screenshot(olivia, "renamed")

        # A taken name (in any case) is refused where it is typed; Escape leaves the name as it was.
        tab(olivia, "Plans").dblclick()
        box = olivia.get_by_role("textbox", name=RENAME_BOX)
        box.fill("sheet1")
        box.press("Enter")
        expect(olivia.locator("#notice")).to_have_text("There is already a sheet named “sheet1”.")
        screenshot(olivia, "rename-refused")
        box.press("Escape")
        expect(box).to_have_count(0)
        expect(tabs(olivia)).to_have_text(["Sheet1", "Plans"])

        # What is typed in the second tab shows in the other page's second tab, not in its first.
        type_into(olivia, 0, 0, "in plans")
        type_into(edgar, 1, 1, "in sheet1")
        expect(cell(edgar, 0, 0)).to_have_text("")
        expect(cell(olivia, 1, 1)).to_have_text("")
        tab(edgar, "Plans").click()
        expect(cell(edgar, 0, 0)).to_have_text("in plans")
        expect(cell(edgar, 1, 1)).to_have_text("")
        tab(olivia, "Sheet1").click()
        expect(cell(olivia, 1, 1)).to_have_text("in sheet1")
        expect(cell(olivia, 0, 0)).to_have_text("")
        settled(olivia)
        settled(edgar)
        first, second = sheets(api, workbook_id)
        assert (first["name"], second["name"]) == ("Sheet1", "Plans")
        assert first["rows"][1]["values"] == [None, "in sheet1", None] and first["rows"][0]["values"] == [None] * 3
        assert second["rows"][0]["values"][0] == "in plans" and not any(second["rows"][1]["values"])  # a new sheet: 100 x 26

        # Others' selections show only on the sheet they are on.
        select_cell(edgar, 2, 2)  # on Plans
        expect(olivia.locator("#grid td.remote-selection")).to_have_count(0)
        tab(olivia, "Plans").click()
        expect(olivia.locator("#grid td.remote-selection")).to_have_count(1)

        # A drag to the left half of the first tab puts Plans first, in both pages.
        tab(olivia, "Plans").drag_to(tab(olivia, "Sheet1"), target_position={"x": 4, "y": 10})
        expect(tabs(olivia)).to_have_text(["Plans", "Sheet1"])
        expect(tabs(edgar)).to_have_text(["Plans", "Sheet1"])
        assert [s["name"] for s in sheets(api, workbook_id)] == ["Plans", "Sheet1"]

        # Deleted after a question: gone from both pages; edgar, who was on it, is told and moved to its neighbour.
        delete_from_menu(olivia, "Plans")
        expect(tabs(olivia)).to_have_text(["Sheet1"])
        expect(tabs(edgar)).to_have_text(["Sheet1"])
        expect(tab(edgar, "Sheet1")).to_have_attribute("aria-selected", "true")
        expect(edgar.locator("#notice")).to_have_text("Sheet “Plans” was deleted by olivia.")
        expect(cell(edgar, 1, 1)).to_have_text("in sheet1")
        assert [s["name"] for s in sheets(api, workbook_id)] == ["Sheet1"]

        # Ctrl+Z brings it back where it was, with its cells; the page that undid it shows it.
        press_in_grid(olivia, UNDO, 3, 2)
        expect(tabs(olivia)).to_have_text(["Plans", "Sheet1"])
        expect(tabs(edgar)).to_have_text(["Plans", "Sheet1"])
        expect(tab(olivia, "Plans")).to_have_attribute("aria-selected", "true")
        expect(cell(olivia, 0, 0)).to_have_text("in plans")
        tab(edgar, "Plans").click()
        expect(cell(edgar, 0, 0)).to_have_text("in plans")
        restored = sheets(api, workbook_id)[0]
        assert (restored["name"], restored["id"], restored["rows"][0]["values"][0]) == ("Plans", second["id"], "in plans")

    def test_duplicate_from_the_menu_copies_the_cells_and_keyboard_reaches_the_tabs(self, site, pages):
        workbook_id, api = new_workbook(site, "Copies", rows=4, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 1, 2, "copied")
        settled(olivia)

        tab(olivia, "Sheet1").click(button="right")
        screenshot(olivia, "menu")
        expect(olivia.get_by_role("menuitem")).to_have_text(["Rename", "Duplicate", "Move left", "Move right"])  # the last sheet cannot go
        olivia.get_by_role("menuitem", name="Duplicate").click()
        expect(tabs(olivia)).to_have_text(["Sheet1", "Sheet1 (copy)"])
        expect(tab(olivia, "Sheet1 (copy)")).to_have_attribute("aria-selected", "true")
        expect(cell(olivia, 1, 2)).to_have_text("copied")
        tab(edgar, "Sheet1 (copy)").click()
        expect(cell(edgar, 1, 2)).to_have_text("copied")
        first, copy = sheets(api, workbook_id)
        assert copy["rows"][1]["values"] == [None, None, "copied"]
        assert {r["id"] for r in copy["rows"]}.isdisjoint(r["id"] for r in first["rows"])

        # From the keyboard: Shift+F10 opens a tab's menu and Escape closes it, arrows move between
        # tabs, Enter shows one, F2 renames it.
        tab(olivia, "Sheet1 (copy)").focus()
        olivia.keyboard.press("Shift+F10")
        expect(olivia.get_by_role("menuitem", name="Rename")).to_be_focused()
        olivia.keyboard.press("ArrowDown")
        expect(olivia.get_by_role("menuitem", name="Duplicate")).to_be_focused()
        olivia.keyboard.press("Escape")
        expect(olivia.get_by_role("menu")).to_be_hidden()
        expect(tab(olivia, "Sheet1 (copy)")).to_be_focused()
        olivia.keyboard.press("ArrowLeft")
        expect(tab(olivia, "Sheet1")).to_be_focused()
        olivia.keyboard.press("Enter")
        expect(tab(olivia, "Sheet1")).to_have_attribute("aria-selected", "true")
        olivia.keyboard.press("F2")
        olivia.keyboard.press("Control+a")
        olivia.keyboard.type("Budget")
        olivia.keyboard.press("Enter")
        expect(tabs(edgar)).to_have_text(["Budget", "Sheet1 (copy)"])
        expect(tab(olivia, "Budget")).to_be_focused()

        # In the grid, Alt + Down and Up go to the next and previous sheet, and the grid keeps the keyboard.
        press_in_grid(olivia, "Alt+ArrowDown", 0, 0)
        expect(tab(olivia, "Sheet1 (copy)")).to_have_attribute("aria-selected", "true")
        olivia.keyboard.press("Alt+ArrowUp")
        expect(tab(olivia, "Budget")).to_have_attribute("aria-selected", "true")
        olivia.keyboard.press("ArrowDown")
        olivia.keyboard.type("typed")
        olivia.keyboard.press("Enter")
        tab(edgar, "Budget").click()
        expect(cell(edgar, 1, 0)).to_have_text("typed")


class AddressTest:
    def test_a_sheet_link_opens_that_tab_and_switching_tabs_names_it_in_the_address(self, site, pages):
        workbook_id, api = new_workbook(site, "Linked", rows=5, cols=3)
        added = operation(api, workbook_id, {"type": "add_sheet", "op": "add-second", "name": "Second"})
        second = added["sheet"]
        linked_cell = {"row": added["rows"][2], "col": added["columns"][1], "value": "linked"}
        operation(api, workbook_id, {"type": "set", "op": "fill-second", "sheet": second, "cells": [linked_cell]})
        olivia = pages("olivia", workbook_id)
        expect(tab(olivia, "Sheet1")).to_have_attribute("aria-selected", "true")  # no fragment: the first sheet

        tab(olivia, "Second").click()
        expect(olivia).to_have_url(re.compile(f"/workbooks/{workbook_id}/#sheet={second}$"))
        expect(cell(olivia, 2, 1)).to_have_text("linked")

        linked = olivia.context.new_page()
        linked.goto(f"{site.base_url}/workbooks/{workbook_id}/#sheet={second}")
        wait_for_workbook(linked)
        expect(tab(linked, "Second")).to_have_attribute("aria-selected", "true")
        expect(cell(linked, 2, 1)).to_have_text("linked")
        screenshot(linked, "linked")

        # A link to a sheet that is no longer there opens the first, and says so.
        gone = operation(api, workbook_id, {"type": "add_sheet", "op": "add-gone", "name": "Gone"})["sheet"]
        operation(api, workbook_id, {"type": "delete_sheet", "op": "delete-gone", "sheet": gone})
        stale = olivia.context.new_page()
        stale.goto(f"{site.base_url}/workbooks/{workbook_id}/#sheet={gone}")
        wait_for_workbook(stale)
        expect(tab(stale, "Sheet1")).to_have_attribute("aria-selected", "true")
        expect(stale.locator("#notice")).to_contain_text("The sheet this link named is not in the workbook")
        expect(stale).to_have_url(re.compile(f"#sheet={sheets(api, workbook_id)[0]['id']}$"))

        # Followed within the page (only the fragment changes), a link switches tabs without a reload.
        linked.evaluate("first => { window.location.hash = `#sheet=${first}` }", sheets(api, workbook_id)[0]["id"])
        expect(tab(linked, "Sheet1")).to_have_attribute("aria-selected", "true")
        expect(cell(linked, 2, 1)).to_have_text("")


class DeletedMeanwhileTest:
    def test_an_edit_waiting_on_a_sheet_deleted_meanwhile_is_dropped_with_the_servers_message(self, site, pages):
        workbook_id, api = new_workbook(site, "Deleted meanwhile", rows=5, cols=3)
        doomed = operation(api, workbook_id, {"type": "add_sheet", "op": "add-doomed", "name": "Doomed"})["sheet"]
        olivia = pages("olivia", workbook_id)
        tab(olivia, "Doomed").click()
        reachable = []
        olivia.route_web_socket("**/ws/**", lambda ws: ws.connect_to_server() if reachable else None)
        olivia.evaluate("window.tabula.socket.ws.close()")
        expect(olivia.locator("#connection")).not_to_have_attribute("data-state", "live")
        type_into(olivia, 0, 0, "too late")
        expect(olivia.locator("#connection")).to_have_text("offline — 1 edit waiting")

        operation(api, workbook_id, {"type": "delete_sheet", "op": "delete-doomed", "sheet": doomed})
        reachable.append(True)
        expect(olivia.locator("#connection")).to_have_text("live")
        settled(olivia)
        expect(tabs(olivia)).to_have_text(["Sheet1"])
        expect(tab(olivia, "Sheet1")).to_have_attribute("aria-selected", "true")
        expect(olivia.locator("#notice")).to_have_text(re.compile("^Not saved: .*Doomed"))  # the server's words
        assert [s["name"] for s in sheets(api, workbook_id)] == ["Sheet1"]


class ViewerTabsTest:
    def test_a_viewer_sees_and_switches_tabs_but_changes_none(self, site, pages):
        workbook_id, api = new_workbook(site, "Viewer tabs", rows=5, cols=3)
        olivia = pages("olivia", workbook_id)
        vera = pages("vera", workbook_id)
        expect(vera.get_by_role("button", name="New sheet")).to_have_count(0)

        olivia.get_by_role("button", name="New sheet").click()
        expect(tabs(vera)).to_have_text(["Sheet1", "Sheet2"])
        type_into(olivia, 0, 0, "for vera")
        tab(vera, "Sheet2").click()
        expect(cell(vera, 0, 0)).to_have_text("for vera")

        tab(vera, "Sheet2").dblclick()
        expect(vera.get_by_role("textbox", name=RENAME_BOX)).to_have_count(0)
        tab(vera, "Sheet2").click(button="right")
        expect(vera.get_by_role("menuitem")).to_have_count(0)
        vera.keyboard.press("Escape")
        tab(vera, "Sheet2").drag_to(tab(vera, "Sheet1"), target_position={"x": 4, "y": 10})
        vera.wait_for_timeout(300)
        expect(tabs(vera)).to_have_text(["Sheet1", "Sheet2"])
        assert vera.evaluate("window.tabula.edits.waiting") == 0
        assert [s["name"] for s in sheets(api, workbook_id)] == ["Sheet1", "Sheet2"]


class OlderPageTest:
    def test_an_edit_an_older_page_left_without_a_sheet_is_sent_as_it_is_and_lands_on_the_first_sheet(self, site, pages):
        workbook_id, api = new_workbook(site, "Left by an older page", rows=4, cols=3)
        operation(api, workbook_id, {"type": "add_sheet", "op": "add-other", "name": "Other"})
        olivia = pages("olivia", workbook_id)
        tab(olivia, "Other").click()
        first = sheets(api, workbook_id)[0]
        row, col = first["rows"][1]["id"], first["columns"][2]["id"]
        left = {
            "alive": 0,  # its page went away
            "since": 0,
            "entries": [
                {
                    "op": "older-page-1",
                    "message": {"type": "set", "op": "older-page-1", "cells": [{"row": row, "col": col, "value": "from before"}]},
                    "cells": [{"rowId": row, "colId": col, "value": "from before"}],
                    "paste": None,
                }
            ],
        }
        olivia.evaluate(
            "([key, left]) => localStorage.setItem(key, JSON.stringify(left))",
            [f"tabula.outbox/{olivia.evaluate('window.tabula.config.userId')}/{workbook_id}/olderpage", left],
        )
        olivia.reload()
        wait_for_workbook(olivia)
        settled(olivia)
        assert sheets(api, workbook_id)[0]["rows"][1]["values"] == [None, None, "from before"]
        expect(tab(olivia, "Other")).to_have_attribute("aria-selected", "true")  # the reload kept the tab shown
        tab(olivia, "Sheet1").click()
        expect(cell(olivia, 1, 2)).to_have_text("from before")


class PastOfSheetsTest:
    def test_cell_history_and_versions_follow_the_sheet_shown(self, site, pages):
        workbook_id, api = new_workbook(site, "Past of sheets", rows=4, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 0, "first sheet")
        settled(olivia)
        type_into(edgar, 0, 1, "edgar's")
        settled(edgar)
        olivia.get_by_role("button", name="New sheet").click()
        expect(tab(olivia, "Sheet2")).to_have_attribute("aria-selected", "true")
        type_into(olivia, 0, 0, "old")
        settled(olivia)
        type_into(edgar, 0, 2, "edgar again")
        settled(edgar)
        type_into(olivia, 0, 0, "new")
        settled(olivia)

        panel = cell_history(olivia, 0, 0)
        expect(panel.get_by_role("heading")).to_have_text("Edit history of A1")
        expect(panel.locator(".entry-value")).to_have_text(["new", "old"])
        tab(olivia, "Sheet1").click()  # the panel follows its cell, now on a sheet not shown
        expect(panel.get_by_role("heading")).to_have_text("Edit history of Sheet2!A1")
        panel.get_by_role("button", name="Close the edit history").click()
        tab(olivia, "Sheet2").click()

        versions = open_versions(olivia).locator("button.version")
        expect(versions.locator(".version-by")).to_have_text(["olivia", "edgar", "olivia", "edgar", "olivia"])
        versions.nth(2).click()  # olivia's sheet added and "old" typed in it: Sheet2 as it was then
        expect(olivia.locator("#past-banner")).to_contain_text(" by olivia — read-only")
        expect(past_cell(olivia, 0, 0)).to_have_text("old")
        versions.nth(3).click()  # before Sheet2 existed: the first sheet, and a word about it
        expect(past_cell(olivia, 0, 1)).to_have_text("edgar's")
        expect(past_cell(olivia, 0, 0)).to_have_text("first sheet")
        expect(olivia.locator("#notice")).to_have_text("Sheet “Sheet2” did not exist then: showing “Sheet1” as it was.")
        expect(olivia.get_by_role("button", name="New sheet")).to_be_hidden()  # tabs change on the live workbook only
        olivia.get_by_role("button", name="Back to the live workbook").click()
        expect(cell(olivia, 0, 0)).to_have_text("new")
        expect(olivia.get_by_role("button", name="New sheet")).to_be_visible()
