"""Nothing a user types is lost, and what replaces someone's work is said: pastes larger than the
workbook, edits waiting while offline (across a reload and a closed tab), a dead connection noticed,
text over the limit kept, an offline edit that replaces a newer one, and the keys that move the
selection stopping at the workbook's edges. Each in Chromium against the embedded server.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    DEAD_CONNECTION_MS,
    PASTE_SCRIPT,
    SILENT_SOCKET_MS,
    TIMEOUT_MS,
    cell,
    paste,
    select_cell,
    settled,
    snapshot_values,
    type_into,
    wait_for_workbook,
    wait_until_showing,
)
from tests.browser.test_workbook_page import new_workbook

pytestmark = pytest.mark.browser


def selected(page) -> list:
    """The selection's [row, col, row2, col2] (the active cell first)."""
    return page.evaluate("window.tabula.grid.hot.getSelectedLast()")


def stored_outbox(page) -> list:
    """Every operation the page keeps in the browser's storage, from every entry."""
    return page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('tabula.outbox/') && !k.endsWith('/tab'))"
        ".flatMap(k => JSON.parse(localStorage.getItem(k)).entries)"
    )


class PasteGrowsWorkbookTest:
    def test_a_paste_longer_than_the_workbook_grows_it_and_survives_a_reload(self, site, pages):
        workbook_id, api = new_workbook(site, "Big paste", rows=100, cols=26)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        block = [[f"r{r}c{c}" for c in range(20)] for r in range(1000)]

        paste(olivia, 0, 0, block)

        expect(olivia.locator("#notice")).to_contain_text("The workbook grows by 900 rows to fit the paste.")
        olivia.wait_for_function("() => window.tabula.grid.hot.countRows() === 1000")
        edgar.wait_for_function("() => window.tabula.grid.hot.countRows() === 1000")
        settled(olivia)
        _, values = snapshot_values(api, workbook_id)
        assert len(values) == 1000
        assert [row[:20] for row in values] == block
        olivia.reload()
        wait_for_workbook(olivia)
        wait_until_showing(olivia, values)
        wait_until_showing(edgar, values)

    def test_a_paste_past_the_column_limit_says_what_was_not_pasted(self, site, pages):
        workbook_id, api = new_workbook(site, "Wide", rows=3, cols=999)
        olivia = pages("olivia", workbook_id)
        olivia.evaluate("window.tabula.grid.hot.selectCell(0, 997)")
        olivia.evaluate(PASTE_SCRIPT, "a\tb\tc\td")

        expect(olivia.locator("#notice")).to_contain_text("The workbook grows by 1 column to fit the paste.")
        expect(olivia.locator("#notice")).to_contain_text("Not pasted: the last 1 column (a sheet holds at most 1,000 columns).")
        settled(olivia)
        _, values = snapshot_values(api, workbook_id)
        assert values[0][997:] == ["a", "b", "c"]

    def test_add_rows_at_the_bottom(self, site, pages):
        workbook_id, api = new_workbook(site, "Growing", rows=100, cols=4)
        olivia = pages("olivia", workbook_id)

        olivia.get_by_role("button", name="Add").click()

        olivia.wait_for_function("() => window.tabula.grid.hot.countRows() === 1100")
        assert len(snapshot_values(api, workbook_id)[1]) == 1100


class WaitingEditsKeptTest:
    def test_edits_waiting_survive_a_closed_tab_and_leaving_asks_first(self, site, browser, pages):
        workbook_id, api = new_workbook(site, "Closed tab")
        olivia = pages("olivia", workbook_id)
        site.server.stop()
        try:
            expect(olivia.locator("#connection")).not_to_have_attribute("data-state", "live")
            type_into(olivia, 2, 1, "typed offline")
            expect(olivia.locator("#connection")).to_have_text("offline — 1 edit waiting")
            assert [op["message"]["cells"][0]["value"] for op in stored_outbox(olivia)] == ["typed offline"]
            dialogs = []
            olivia.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
            olivia.close(run_before_unload=True)
            olivia.wait_for_event("close")
            assert dialogs == ["beforeunload"]
        finally:
            site.server.start()

        again = olivia.context.new_page()
        again.goto(f"{site.base_url}/workbooks/{workbook_id}/")
        expect(cell(again, 2, 1)).to_have_text("typed offline")
        settled(again)
        _, values = snapshot_values(api, workbook_id)
        assert values[2][1] == "typed offline"
        assert stored_outbox(again) == []

    def test_edits_waiting_survive_a_reload(self, site, pages):
        workbook_id, api = new_workbook(site, "Reloaded")
        olivia = pages("olivia", workbook_id)
        # The server cannot be reached: the page's next sockets open to nothing (Playwright answers them).
        reachable = []
        olivia.route_web_socket("**/ws/**", lambda ws: ws.connect_to_server() if reachable else None)
        olivia.evaluate("window.tabula.socket.ws.close()")
        type_into(olivia, 1, 1, "before reload")
        expect(olivia.locator("#connection")).to_have_text("offline — 1 edit waiting")

        reachable.append(True)
        olivia.reload()  # Playwright accepts the page's beforeunload question

        wait_for_workbook(olivia)
        expect(cell(olivia, 1, 1)).to_have_text("before reload")
        settled(olivia)
        assert snapshot_values(api, workbook_id)[1][1][1] == "before reload"

    def test_a_stored_edit_the_server_refuses_is_dropped_and_said_once(self, site, pages):
        workbook_id, _ = new_workbook(site, "Refused")
        olivia = pages("olivia", workbook_id)
        user_id = olivia.evaluate("JSON.parse(document.getElementById('tabula-config').textContent).userId")
        bad = {"op": "unknown-row", "message": {"type": "set", "op": "unknown-row", "cells": [{"row": 999_999, "col": 1, "value": "x"}]}, "cells": []}
        olivia.evaluate(
            "([key, value]) => localStorage.setItem(key, value)",
            [f"tabula.outbox/{user_id}/{workbook_id}/left-behind", json.dumps({"alive": 0, "since": 0, "entries": [bad]})],
        )

        olivia.reload()
        wait_for_workbook(olivia)

        expect(olivia.locator("#notice")).to_contain_text("Not saved: unknown row id 999999")
        settled(olivia)
        assert stored_outbox(olivia) == []
        olivia.reload()
        wait_for_workbook(olivia)
        olivia.wait_for_timeout(1000)
        expect(olivia.locator("#notice")).to_be_hidden()


class DeadConnectionTest:
    def test_browser_offline_shown_within_seconds_presence_dropped_edits_sent_when_back(self, site, pages):
        workbook_id, api = new_workbook(site, "Cable pulled")
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)
        expect(edgar.locator("#presence li")).to_have_text(["olivia"])

        olivia.context.set_offline(True)
        expect(olivia.locator("#connection")).to_have_attribute("data-state", "offline", timeout=DEAD_CONNECTION_MS)
        type_into(olivia, 0, 0, "while offline")
        expect(olivia.locator("#connection")).to_have_text("offline — 1 edit waiting")
        expect(edgar.locator("#presence li")).to_have_count(0, timeout=SILENT_SOCKET_MS)

        olivia.context.set_offline(False)
        expect(olivia.locator("#connection")).to_have_attribute("data-state", "live")
        expect(cell(edgar, 0, 0)).to_have_text("while offline")
        expect(edgar.locator("#presence li")).to_have_text(["olivia"])
        assert snapshot_values(api, workbook_id)[1][0][0] == "while offline"

    def test_a_page_that_only_watches_a_busy_workbook_keeps_its_socket_past_the_silence_limit(self, site, pages):
        workbook_id, api = new_workbook(site, "Watched")
        _, snapshot = api.request("GET", f"/api/workbooks/{workbook_id}/")
        first = {"row": snapshot["sheets"][0]["rows"][0]["id"], "col": snapshot["sheets"][0]["columns"][0]["id"]}
        vera = pages("vera", workbook_id)  # a viewer sends nothing of her own
        reopened = []
        vera.on("websocket", lambda ws: reopened.append(ws.url))

        deadline = time.monotonic() + SILENT_SOCKET_MS / 1000
        edits = 0
        while time.monotonic() < deadline:  # she hears a change every second, so never goes quiet
            edit = {"type": "set", "op": f"busy-{edits}", "cells": [{**first, "value": edits}]}
            status, body = api.request("POST", f"/api/workbooks/{workbook_id}/ops", edit)
            assert status == 201, body
            edits += 1
            vera.wait_for_timeout(1000)

        expect(cell(vera, 0, 0)).to_have_text(str(edits - 1))
        expect(vera.locator("#connection")).to_have_attribute("data-state", "live")
        assert reopened == [], "the server closed the watching page's socket"

    def test_a_server_that_stops_answering_is_noticed_by_the_heartbeat(self, site, pages):
        workbook_id, _ = new_workbook(site, "Frozen server")
        olivia = pages("olivia", workbook_id)
        os.killpg(site.server.proc.pid, signal.SIGSTOP)  # its sockets stay open; nothing answers
        try:
            expect(olivia.locator("#connection")).not_to_have_attribute("data-state", "live", timeout=DEAD_CONNECTION_MS + 2000)
        finally:
            os.killpg(site.server.proc.pid, signal.SIGCONT)
        expect(olivia.locator("#connection")).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)

    def test_a_server_that_accepts_then_closes_at_once_is_retried_ever_more_slowly(self, site, pages):
        # The backoff starts again only after a connection that lasted, not at every open: a page
        # whose every connection was closed at once (say by an operation the server could not take)
        # reconnected four times a second.
        workbook_id, _ = new_workbook(site, "Closing server")
        olivia = pages("olivia", workbook_id)
        opened, closing = [], True

        def accept_then_close(ws):
            if not closing:
                ws.connect_to_server()
                return
            opened.append(time.monotonic())
            ws.send('{"type": "pong"}')  # open, as far as the page can tell
            ws.close(code=4503)

        olivia.route_web_socket("**/ws/**", accept_then_close)
        olivia.evaluate("window.tabula.socket.ws.close()")
        olivia.wait_for_timeout(8000)

        assert 3 <= len(opened) <= 7, opened  # 0.25 s, 0.5, 1, 2, 4 between them: not 30
        closing = False
        expect(olivia.locator("#connection")).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)


class TextOverLimitTest:
    def test_typed_text_over_the_limit_stays_in_the_editor(self, site, pages):
        workbook_id, api = new_workbook(site, "Long typing")
        olivia = pages("olivia", workbook_id)
        select_cell(olivia, 1, 1)
        olivia.keyboard.press("Enter")
        olivia.keyboard.insert_text("y" * 11_000)
        olivia.keyboard.press("Enter")

        editor = olivia.locator(".handsontableInputHolder textarea")
        expect(olivia.locator("#notice")).to_contain_text("A cell holds at most 10,000 characters; this text has 11,000.")
        expect(editor).to_be_visible()
        assert len(editor.input_value()) == 11_000

        olivia.keyboard.press("End")
        for _ in range(1000):
            olivia.keyboard.press("Backspace")
        olivia.keyboard.press("Enter")
        olivia.wait_for_function("() => window.tabula.grid.editingCell() === null")
        settled(olivia)
        assert snapshot_values(api, workbook_id)[1][1][1] == "y" * 10_000


class OverwrittenTest:
    def test_an_offline_edit_that_replaces_a_newer_one_is_told_to_both_and_can_be_put_back(self, site, pages):
        workbook_id, api = new_workbook(site, "Concurrent", rows=20, cols=4)
        olivia = pages("olivia", workbook_id)
        edgar = pages("edgar", workbook_id)

        olivia.context.set_offline(True)
        expect(olivia.locator("#connection")).to_have_attribute("data-state", "offline")
        type_into(olivia, 17, 2, "olivia, offline")
        type_into(edgar, 17, 2, "edgar, online")
        olivia.context.set_offline(False)

        expect(cell(edgar, 17, 2)).to_have_text("olivia, offline")
        expect(olivia.locator("#alerts li")).to_contain_text('Your edit made earlier replaced what edgar wrote since in C18 ("edgar, online").')
        edgar_alert = edgar.locator("#alerts li")
        expect(edgar_alert).to_contain_text('olivia\'s edit made earlier replaced what you wrote in C18 ("edgar, online").')

        edgar_alert.get_by_role("button", name="Put back").click()
        expect(cell(olivia, 17, 2)).to_have_text("edgar, online")
        expect(edgar_alert).to_have_count(0)
        _, values = snapshot_values(api, workbook_id)
        assert values[17][2] == "edgar, online"
        wait_until_showing(olivia, values)


class KeysStopAtEdgesTest:
    def test_arrows_enter_and_tab_stop_at_the_edges_ctrl_arrow_jumps_to_the_data_edge(self, site, pages):
        workbook_id, api = new_workbook(site, "Edges", rows=10, cols=3)
        olivia = pages("olivia", workbook_id)
        for row in (3, 4, 5):
            type_into(olivia, row, 0, f"v{row}")

        def after(keys, start):
            olivia.evaluate("([r, c]) => window.tabula.grid.hot.selectCell(r, c)", list(start))
            for key in keys:
                olivia.keyboard.press(key)
            return selected(olivia)[:2]

        assert after(["ArrowUp"], (0, 0)) == [0, 0]
        assert after(["ArrowLeft"], (0, 0)) == [0, 0]
        assert after(["ArrowDown"], (9, 0)) == [9, 0]
        assert after(["ArrowRight"], (0, 2)) == [0, 2]
        assert after(["Enter", "x", "Shift+Enter"], (0, 1)) == [0, 1]  # typed in B1, then up: stays
        assert after(["Enter", "y", "Enter"], (9, 1)) == [9, 1]  # typed in B10, then down: stays
        settled(olivia)
        _, values = snapshot_values(api, workbook_id)
        assert (values[0][1], values[9][1]) == ("x", "y")
        assert after(["Control+ArrowDown"], (0, 0)) == [3, 0]  # to the next filled cell
        assert after(["Control+ArrowDown"], (3, 0)) == [5, 0]  # to the end of the run
        assert after(["Control+ArrowDown"], (5, 0)) == [9, 0]  # nothing below: the workbook's edge
        assert after(["Control+ArrowUp"], (9, 0)) == [5, 0]
        assert after(["Control+ArrowRight"], (4, 0)) == [4, 2]
        olivia.evaluate("window.tabula.grid.hot.selectCell(0, 0)")
        olivia.keyboard.press("Control+Shift+ArrowDown")
        assert selected(olivia) == [0, 0, 3, 0]
