"""Driving a workbook page in Debian's Chromium with Playwright, shared by the browser tests against the
embedded server (tests/browser/) and against the production shape through nginx (tests/stack/test_browser.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1280, "height": 720}
DEAD_CONNECTION_MS = 10_000  # a page notices a dead connection within this
SILENT_SOCKET_MS = 30_000 + 15_000  # the server closes a socket silent for 30 s; then its presence leaves

PASTE_SCRIPT = """(text) => {
  const data = new DataTransfer();
  data.setData('text/plain', text);
  document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
}"""


def policy_refusals(context) -> list:
    """Every refusal of the pages' Content-Security-Policy that Chromium logs in this context, with
    where it happened; a test's pages should leave it empty."""
    refused = []
    context.on("console", lambda message: refused.append((message.text, message.location)) if "Content Security Policy" in message.text else None)
    return refused


@contextmanager
def launch_chromium() -> Iterator:
    """Debian's Chromium under Playwright's sync API. Use it from a module-scoped fixture: the sync API
    runs an event loop of its own, which must be gone before the suite's asyncio tests run."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is not installed; scripts/test installs it")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_context(browser, **options):
    """A browser context of its own (its own session cookie) with the tests' viewport and timeout."""
    context = browser.new_context(viewport=VIEWPORT, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def wait_for_workbook(page) -> None:
    """Waits until the workbook page is connected and its grid is drawn."""
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector("#grid .htCore td")


def log_in_to_workbook(page, base_url: str, username: str, password: str, workbook_id: int) -> None:
    """Logs in through the login form, which leads on to the workbook, and waits until the workbook is live."""
    page.goto(f"{base_url}/accounts/login/?next=/workbooks/{workbook_id}/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/workbooks/{workbook_id}/")
    wait_for_workbook(page)


def cell(page, row: int, col: int):
    """The rendered cell at a 0-based position (the first cell of each row is its row header)."""
    return page.locator(f"#grid .ht_master .htCore tbody tr:nth-child({row + 1}) td:nth-child({col + 2})")


def select_cell(page, row: int, col: int) -> None:
    """Selects one cell with a click, with no editor open. To Handsontable a click on the same cell
    element within 500 ms of an earlier one is a double click, which opens the editor over the cell:
    Escape closes it if so (and does nothing otherwise)."""
    cell(page, row, col).click()
    page.keyboard.press("Escape")


def press_in_grid(page, keys: str, row: int = 0, col: int = 0) -> None:
    """Presses keys with the grid's cell selected and no editor open."""
    select_cell(page, row, col)
    page.keyboard.press(keys)


def settled(page) -> None:
    """Waits until the page has no operation the server has not answered."""
    page.wait_for_function("() => window.tabula.edits.waiting === 0")


def type_into(page, row: int, col: int, text: str) -> None:
    select_cell(page, row, col)
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def context_menu(page, row: int, col: int, item: str) -> None:
    """Selects a cell alone, right-clicks it and picks a menu item."""
    select_cell(page, row, col)
    cell(page, row, col).click(button="right")
    page.locator(".htContextMenu td").filter(has_text=item).first.click()


def paste(page, row: int, col: int, rows: list[list[str]]) -> None:
    """A real paste event carrying tab-separated text, as a spreadsheet copy puts on the clipboard."""
    select_cell(page, row, col)
    page.evaluate(PASTE_SCRIPT, "\n".join("\t".join(r) for r in rows))


def snapshot_values(api, workbook_id) -> tuple[int, list]:
    status, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
    assert status == 200, snapshot
    return snapshot["rev"], [row["values"] for row in snapshot["sheets"][0]["rows"]]


def wait_until_showing(page, values: list) -> None:
    """Waits until the page's grid shows exactly these rows of values."""
    try:
        page.wait_for_function("expected => JSON.stringify(window.tabula.grid.data()) === JSON.stringify(expected)", arg=values, timeout=TIMEOUT_MS)
    except PlaywrightTimeout:
        assert page.evaluate("window.tabula.grid.data()") == values  # shows the difference


def changes_since(api, workbook_id, rev) -> list:
    status, body = api.request("GET", f"/api/workbooks/{workbook_id}/changes?since={rev}")
    assert status == 200, body
    return body["changes"]


def paste_insert_delete_select(api, workbook_id, first, second) -> list:
    """Two pages on a workbook holding "hello" at row 1, column 1: ``second`` pastes a block (one ``set``),
    ``first`` inserts a row above it, ``second`` deletes one and selects a cell; each step shows in
    the other page, and both end equal to the snapshot. Returns the snapshot's values."""
    rev_before_paste, _ = snapshot_values(api, workbook_id)
    block = [["north", "12", "7"], ["south", "9", "11"], ["east", "", "3"]]
    paste(second, 3, 0, block)
    expect(cell(first, 3, 0)).to_have_text("north")
    expect(cell(first, 5, 2)).to_have_text("3")
    pasted = changes_since(api, workbook_id, rev_before_paste)
    assert [c["kind"] for c in pasted] == ["set"], "a paste is one operation"
    # the empty pasted cell was empty already, so it is not written; numbers are pasted as numbers
    assert [c["value"] for c in pasted[0]["cells"]] == ["north", 12, 7, "south", 9, 11, "east", 3]

    context_menu(first, 1, 0, "Insert 1 row above")
    expect(cell(second, 2, 1)).to_have_text("hello")
    expect(cell(second, 1, 1)).to_have_text("")
    expect(cell(second, 4, 0)).to_have_text("north")

    context_menu(second, 4, 0, "Delete 1 row")
    expect(cell(first, 4, 0)).to_have_text("south")
    expect(cell(first, 2, 1)).to_have_text("hello")

    cell(second, 6, 2).click()
    expect(first.locator("#grid td.remote-selection")).to_have_count(1)

    _, values = snapshot_values(api, workbook_id)
    assert len(values) == 20
    wait_until_showing(first, values)
    wait_until_showing(second, values)
    return values
