"""The workbook's past on the workbook page, as spreadsheet users expect it: a cell's edit history (right-click,
"Show edit history": every value it held, who and when, and "Put back"), and the version history
(the History button: each version shown read-only in the grid's place while the live workbook goes on
changing, "Restore this version", "Back to the live workbook"). Viewers read both and change nothing. In
Chromium against the embedded server, with the server's snapshot and change log as the referee.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import support
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
    wait_until_showing,
)
from tests.browser.test_undo import UNDO
from tests.browser.test_workbook_page import XSS, new_workbook

pytestmark = pytest.mark.browser


def set_through_api(api, workbook_id: int, op: str, row_id: int, col_id: int, value: str) -> None:
    """Writes a cell (by its row and column ids) through the HTTP API, as another client would."""
    operation = {"type": "set", "op": op, "cells": [{"row": row_id, "col": col_id, "value": value}]}
    status, body = api.request("POST", f"/api/workbooks/{workbook_id}/ops", operation)
    assert status == 201, body


def past_cell(page, row: int, col: int):
    """A rendered cell of the earlier version shown in the grid's place."""
    return page.locator(f"#past-grid .ht_master .htCore tbody tr:nth-child({row + 1}) td:nth-child({col + 2})")


def showing_past(page, values: list) -> None:
    """Waits until the page shows an earlier version holding exactly these rows of values."""
    page.wait_for_function(
        "expected => window.tabula.past !== null && JSON.stringify(window.tabula.past.data()) === JSON.stringify(expected)", arg=values
    )


def cell_history(page, row: int, col: int):
    """Opens a cell's edit history from the context menu; returns the panel."""
    context_menu(page, row, col, "Show edit history")
    panel = page.get_by_role("complementary", name="Edit history")
    expect(panel).to_be_visible()
    return panel


def open_versions(page):
    """Opens the version history with the History button; returns the panel."""
    page.get_by_role("button", name="History", exact=True).click()
    panel = page.get_by_role("complementary", name="Version history")
    expect(panel).to_be_visible()
    return panel


class CellHistoryTest:
    def test_both_users_values_newest_first_and_put_back_writes_the_older_one(self, site, pages):
        workbook_id, api = new_workbook(site, "Cell history", rows=6, cols=4)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 2, 1, "first draft")
        expect(cell(edgar, 2, 1)).to_have_text("first draft")
        type_into(edgar, 2, 1, XSS)
        expect(cell(olivia, 2, 1)).to_have_text(XSS)
        settled(edgar)

        panel = cell_history(olivia, 2, 1)
        expect(panel.get_by_role("heading")).to_have_text("Edit history of B3")
        expect(panel.get_by_role("heading")).to_be_focused()
        entries = panel.locator(".history-entry")
        expect(entries.locator(".entry-value")).to_have_text([XSS, "first draft"])  # as text, never as markup
        expect(entries.locator(".entry-by")).to_have_text(["edgar", "olivia"])
        expect(panel.locator("img")).to_have_count(0)
        expect(entries.nth(0)).to_contain_text("Current value")
        expect(entries.nth(0).get_by_role("button")).to_have_count(0)
        expect(entries.nth(1).locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT.+Z$"))

        entries.nth(1).get_by_role("button", name="Put back").click()
        expect(cell(olivia, 2, 1)).to_have_text("first draft")
        expect(cell(edgar, 2, 1)).to_have_text("first draft")
        # The put back is an edit like typing (a set of olivia's), and the open panel follows it.
        expect(entries.locator(".entry-value")).to_have_text(["first draft", XSS, "first draft"])
        expect(entries.locator(".entry-by")).to_have_text(["olivia", "edgar", "olivia"])
        settled(olivia)
        rev, values = snapshot_values(api, workbook_id)
        assert values[2][1] == "first draft"
        (put_back,) = changes_since(api, workbook_id, rev - 1)
        assert (put_back["kind"], put_back["by"]["name"]) == ("set", "olivia")
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)

        select_cell(edgar, 2, 1)  # emptied while the panel is open
        edgar.keyboard.press("Delete")
        expect(entries.first.locator(".entry-value")).to_have_text("(empty)")
        expect(entries).to_have_count(4)
        expect(panel.get_by_role("heading")).to_be_focused()  # since the put back: the keyboard stays in the panel
        olivia.keyboard.press("Escape")
        expect(panel).to_be_hidden()

    def test_a_formula_shows_as_it_read_then_and_put_back_names_the_same_cells(self, site, pages):
        workbook_id, api = new_workbook(site, "Formula history", rows=6, cols=4)
        olivia = pages("olivia", workbook_id)
        type_into(olivia, 2, 0, "5")
        type_into(olivia, 0, 1, "=A3*2")
        expect(cell(olivia, 0, 1)).to_have_text("10")
        type_into(olivia, 0, 1, "7")
        settled(olivia)
        status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
        above = {"type": "insert_rows", "op": "above", "before": snapshot["sheets"][0]["rows"][0]["id"], "count": 1}
        assert api.request("POST", f"/api/workbooks/{workbook_id}/ops", above)[0] == 201
        expect(cell(olivia, 3, 0)).to_have_text("5")

        panel = cell_history(olivia, 1, 1)
        entries = panel.locator(".history-entry")
        expect(entries.locator(".entry-value")).to_have_text(["7", "=A3*2"])  # as it read when written
        expect(entries.nth(1).locator(".entry-computed")).to_have_text("= 10")
        entries.nth(1).get_by_role("button", name="Put back").click()
        expect(cell(olivia, 1, 1)).to_have_text("10")  # still A3 as it was: A4 now
        settled(olivia)
        select_cell(olivia, 1, 1)
        olivia.keyboard.press("Enter")
        expect(olivia.locator("textarea.handsontableInput")).to_have_value("=A4*2")
        olivia.keyboard.press("Escape")

    def test_the_panel_follows_the_cell_says_when_it_is_deleted_and_pages_with_load_more(self, site, pages):
        workbook_id, api = new_workbook(site, "Cell moves", rows=6, cols=4)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        for n in range(60):  # more than a page of the panel (50)
            set_through_api(api, workbook_id, f"many-{n}", 2, 1, f"v{n}")
        expect(cell(olivia, 1, 0)).to_have_text("v59")

        panel = cell_history(olivia, 1, 0)
        expect(panel.get_by_role("heading")).to_have_text("Edit history of A2")
        entries = panel.locator(".history-entry")
        expect(entries).to_have_count(50)
        expect(entries.first.locator(".entry-value")).to_have_text("v59")
        panel.get_by_role("button", name="Load more").click()
        expect(entries).to_have_count(60)
        expect(entries.last.locator(".entry-value")).to_have_text("v0")
        expect(panel.get_by_role("button", name="Load more")).to_be_hidden()
        expect(panel.locator(".panel-end")).to_have_text("No earlier edits are kept.")

        context_menu(edgar, 0, 0, "Insert 1 row above")
        expect(panel.get_by_role("heading")).to_have_text("Edit history of A3")
        context_menu(edgar, 2, 0, "Delete 1 row")
        expect(panel.get_by_role("heading")).to_have_text("Edit history of a deleted cell")
        expect(panel.locator(".panel-note")).to_contain_text("This cell was deleted")
        expect(panel.get_by_role("button", name="Put back").first).to_be_disabled()
        press_in_grid(edgar, UNDO, 0, 0)  # the row comes back, with its id: the panel follows it again
        expect(panel.get_by_role("heading")).to_have_text("Edit history of A3")
        expect(panel.get_by_role("button", name="Put back").first).to_be_enabled()
        panel.get_by_role("button", name="Close the edit history").click()
        expect(panel).to_be_hidden()


class HistoryNoLongerKeptTest:
    def test_pruned_history_says_it_is_no_longer_kept(self, site, pages):
        workbook_id, api = new_workbook(site, "Pruned", rows=4, cols=3)
        olivia = pages("olivia", workbook_id)
        for n in range(60):
            set_through_api(api, workbook_id, f"old-{n}", 1, 1, f"v{n}")
        expect(cell(olivia, 0, 0)).to_have_text("v59")
        versions = open_versions(olivia).locator("button.version")
        expect(versions.locator(".version-what")).to_have_text(["60 edits"])
        expect(versions.nth(1)).to_have_text("As created")
        panel = cell_history(olivia, 0, 0)  # in the version history's place
        expect(panel.locator(".history-entry")).to_have_count(50)

        support.manage(site.env, "prune_changes", "--keep", "5", "--workbook", str(workbook_id))
        panel.get_by_role("button", name="Load more").click()
        expect(panel.locator(".panel-end")).to_have_text("Older history is no longer kept.")
        expect(panel.get_by_role("button", name="Load more")).to_be_hidden()
        expect(panel.locator(".history-entry")).to_have_count(50)

        versions = open_versions(olivia).locator("button.version")
        versions.nth(1).click()  # the list read before the pruning offers the workbook as created
        expect(olivia.get_by_role("complementary", name="Version history").locator(".panel-status")).to_have_text("That version is no longer kept.")
        expect(olivia.locator("#past-banner")).to_be_hidden()
        expect(olivia.locator("#grid")).to_be_visible()


class VersionHistoryTest:
    def test_an_earlier_version_shows_read_only_while_the_live_workbook_goes_on(self, site, pages):
        workbook_id, api = new_workbook(site, "Versions", rows=4, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        type_into(olivia, 0, 0, "one")
        settled(olivia)
        type_into(edgar, 0, 1, "two")
        settled(edgar)
        type_into(olivia, 0, 0, "three")
        type_into(olivia, 1, 0, "four")
        settled(olivia)

        panel = open_versions(olivia)
        expect(olivia.get_by_role("button", name="History", exact=True)).to_have_attribute("aria-expanded", "true")
        versions = panel.locator("button.version")
        expect(versions).to_have_count(4)  # olivia's two edits, edgar's, olivia's first, and the workbook as created
        expect(versions.locator(".version-by")).to_have_text(["olivia", "edgar", "olivia"])
        expect(versions.locator(".version-what")).to_have_text(["2 edits", "1 edit", "1 edit"])
        expect(versions.nth(0)).to_contain_text("Current version")
        expect(versions.nth(3)).to_have_text("As created")

        versions.nth(1).click()  # edgar's: the workbook as it was after it
        banner = olivia.locator("#past-banner")
        expect(banner).to_contain_text("Viewing the version of ")
        expect(banner).to_contain_text(" by edgar — read-only")
        then = [["one", "two", None], [None, None, None], [None, None, None], [None, None, None]]
        showing_past(olivia, then)
        expect(past_cell(olivia, 0, 1)).to_have_text("two")
        expect(olivia.locator("#grid")).to_be_hidden()
        expect(versions.nth(1)).to_have_attribute("aria-current", "true")
        # Read-only: nothing to type into, no edit sent, no undo.
        past_cell(olivia, 2, 2).dblclick()
        olivia.keyboard.type("nope")
        olivia.keyboard.press("Enter")
        olivia.keyboard.press(UNDO)
        expect(olivia.locator(".handsontableInputHolder textarea:visible")).to_have_count(0)
        expect(olivia.get_by_role("button", name="Undo", exact=True)).to_be_disabled()
        assert olivia.evaluate("window.tabula.edits.waiting") == 0

        type_into(edgar, 0, 2, "edgar later")  # arrives while olivia looks at the past
        expect(panel.locator(".panel-refresh")).to_be_visible()
        olivia.wait_for_function("() => window.tabula.grid.data()[0][2] === 'edgar later'")
        showing_past(olivia, then)
        expect(banner).to_contain_text(" by edgar — read-only")

        versions.nth(3).click()  # the workbook as created
        expect(olivia.locator("#past-banner-text")).to_have_text("Viewing the workbook as it was created — read-only")
        expect(olivia.get_by_role("button", name="Restore this version")).to_be_visible()
        showing_past(olivia, [[None] * 3] * 4)

        olivia.get_by_role("button", name="Back to the live workbook").click()
        expect(banner).to_be_hidden()
        expect(olivia.locator("#past-grid")).to_be_hidden()
        _, values = snapshot_values(api, workbook_id)
        assert values[0] == ["three", "two", "edgar later"]
        wait_until_showing(olivia, values)
        expect(cell(olivia, 0, 2)).to_have_text("edgar later")
        assert olivia.evaluate("window.tabula.past") is None
        expect(versions.nth(3)).to_be_focused()  # the keyboard is back on the version that was shown

        panel.get_by_role("button", name="Show newer versions").click()
        expect(versions.locator(".version-by")).to_have_text(["edgar", "olivia", "edgar", "olivia"])
        olivia.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(olivia.get_by_role("button", name="History", exact=True)).to_have_attribute("aria-expanded", "false")
        type_into(olivia, 3, 0, "editing again")  # the live grid takes edits again
        expect(cell(edgar, 3, 0)).to_have_text("editing again")

    def test_restore_this_version_reaches_both_pages_and_ctrl_z_takes_it_back(self, site, pages):
        workbook_id, api = new_workbook(site, "Restore", rows=4, cols=3)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        paste(olivia, 0, 0, [["a1", "b1"], ["a2", "b2"], ["a3", "b3"]])
        expect(cell(edgar, 2, 1)).to_have_text("b3")
        settled(olivia)
        rev_then, values_then = snapshot_values(api, workbook_id)
        type_into(edgar, 0, 0, "edgar's")
        context_menu(edgar, 1, 0, "Delete 1 row")
        expect(cell(olivia, 1, 0)).to_have_text("a3")
        settled(edgar)
        rev_before, values_before = snapshot_values(api, workbook_id)

        versions = open_versions(olivia).locator("button.version")
        expect(versions.locator(".version-what")).to_have_text(["2 changes: edits and rows deleted", "1 edit"])
        versions.nth(1).click()
        showing_past(olivia, values_then)
        olivia.get_by_role("button", name="Restore this version").click()
        expect(olivia.locator("#past-banner")).to_be_hidden()
        for page in (olivia, edgar):
            expect(cell(page, 1, 0)).to_have_text("a2")
            expect(cell(page, 0, 0)).to_have_text("a1")
        expect(edgar.locator("#notice")).to_have_text("olivia restored an earlier version of the workbook.")
        settled(olivia)
        rev, values = snapshot_values(api, workbook_id)
        assert values == values_then
        (restore,) = changes_since(api, workbook_id, rev_before)
        assert (restore["kind"], restore["by"]["name"], restore["restore_of"]) == ("batch", "olivia", rev_then)
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)

        press_in_grid(olivia, UNDO, 3, 2)
        for page in (olivia, edgar):
            expect(cell(page, 0, 0)).to_have_text("edgar's")
            expect(cell(page, 1, 0)).to_have_text("a3")
        settled(olivia)
        _, values = snapshot_values(api, workbook_id)
        assert values == values_before
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)


class ViewerHistoryTest:
    def test_a_viewer_reads_both_histories_and_changes_nothing(self, site, pages):
        workbook_id, api = new_workbook(site, "Viewer history", rows=4, cols=3)
        olivia = pages("olivia", workbook_id)
        vera = pages("vera", workbook_id)
        type_into(olivia, 1, 1, "before")
        settled(olivia)
        set_through_api(site.api("edgar"), workbook_id, "by-edgar", 2, 2, "after")
        expect(cell(vera, 1, 1)).to_have_text("after")
        rev, values = snapshot_values(api, workbook_id)

        select_cell(vera, 1, 1)  # the context menu from the keyboard too: Shift+F10, then its last item
        vera.keyboard.press("Shift+F10")
        expect(vera.locator(".htContextMenu")).to_be_visible()
        vera.keyboard.press("ArrowUp")
        vera.keyboard.press("Enter")
        panel = vera.get_by_role("complementary", name="Edit history")
        expect(panel.get_by_role("heading")).to_have_text("Edit history of B2")
        expect(panel.get_by_role("heading")).to_be_focused()
        expect(panel.locator(".entry-value")).to_have_text(["after", "before"])
        expect(panel.locator(".entry-by")).to_have_text(["edgar", "olivia"])
        expect(panel.get_by_role("button", name="Put back")).to_have_count(0)
        vera.keyboard.press("Escape")
        expect(panel).to_be_hidden()

        versions = open_versions(vera).locator("button.version")
        expect(versions.locator(".version-by")).to_have_text(["edgar", "olivia"])
        versions.nth(1).click()
        showing_past(vera, [[None] * 3, [None, "before", None], [None] * 3, [None] * 3])
        expect(vera.locator("#past-banner")).to_contain_text(" by olivia — read-only")
        expect(vera.get_by_role("button", name="Back to the live workbook")).to_be_visible()
        expect(vera.get_by_role("button", name="Restore this version")).to_have_count(0)
        vera.get_by_role("button", name="Back to the live workbook").click()
        wait_until_showing(vera, values)
        select_cell(vera, 0, 0)
        assert vera.evaluate("window.tabula.edits.waiting") == 0
        assert snapshot_values(api, workbook_id) == (rev, values)
