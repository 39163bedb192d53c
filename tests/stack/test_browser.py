"""The first issue's browser test, through nginx on the production shape: two people on one workbook, in
Chromium, whose sockets are held by different daphne processes, see each other's edits as they make them.

What crosses between the processes is everything the pages show of each other: typed values, a paste
(one operation), a row inserted and a row deleted, names in the presence list and a selection. The
snapshot fetched through nginx is the referee at the end.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    DEAD_CONNECTION_MS,
    SILENT_SOCKET_MS,
    cell,
    changes_since,
    launch_chromium,
    log_in_to_workbook,
    new_context,
    paste_insert_delete_select,
    snapshot_values,
    type_into,
    wait_for_workbook,
)

pytestmark = [pytest.mark.browser, pytest.mark.processes]

MAX_PAGES = 10  # pages opened at most to get a socket onto the other daphne process


class SocketUpstreams:
    """Which daphne process took each workbook socket a page opened, in order (reconnections included).

    nginx adds ``X-Tabula-Upstream: $upstream_addr`` to the WebSocket handshake response
    (deploy/nginx/tabula.conf). Playwright's WebSocket objects do not expose handshake headers and its
    ``response`` events skip sockets, so this listens to Chromium's DevTools protocol on the page instead:
    ``Network.webSocketHandshakeResponseReceived`` carries the response headers of the page's own socket,
    as nginx sent them. Create it before the page connects.
    """

    def __init__(self, page):
        self.page = page
        self.urls: dict[str, str] = {}
        self.upstreams: list[str | None] = []
        session = page.context.new_cdp_session(page)
        session.on("Network.webSocketCreated", lambda event: self.urls.__setitem__(event["requestId"], event["url"]))
        session.on("Network.webSocketHandshakeResponseReceived", self._handshake)
        session.send("Network.enable")

    def _handshake(self, event) -> None:
        if "/ws/workbooks/" in self.urls.get(event["requestId"], ""):
            headers = {name.lower(): value for name, value in event["response"]["headers"].items()}
            self.upstreams.append(headers.get("x-tabula-upstream"))

    def current(self) -> str | None:
        """The upstream of the page's latest socket; the page shows "live" only after its handshake, but
        the DevTools event may still be on its way, so this gives it a moment."""
        for _ in range(100):
            if self.upstreams:
                return self.upstreams[-1]
            self.page.wait_for_timeout(50)
        raise AssertionError("no WebSocket handshake seen on the page")


@pytest.fixture(scope="module")
def browser():
    """Chromium for this module only: Playwright's sync API runs an event loop of its own, which must be
    gone before the asyncio tests of the next modules run."""
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def contexts(browser):
    """Opens browser contexts (one per person, each with its own session cookie); closes them after."""
    opened = []

    def open_context():
        context = new_context(browser, ignore_https_errors=True)  # the stack's certificate is self-signed
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def open_workbook(context, stack, username: str, workbook_id: int):
    """Logs in through nginx and opens the workbook; returns the page and its socket upstreams."""
    page = context.new_page()
    sockets = SocketUpstreams(page)
    log_in_to_workbook(page, stack.url, username, stack.users[username], workbook_id)
    return page, sockets


def open_workbook_on_another_daphne(context, stack, username: str, workbook_id: int, taken: str):
    """A workbook page of ``username`` (logged in through nginx) whose socket is on a daphne process other
    than ``taken``.

    nginx spreads sockets with least_conn (counted across its workers), so with the first page's socket
    alone on ``taken`` the next one goes to the other process, the first time. Sockets held elsewhere on
    the shared stack could make the other process the busier one; then the page that landed on ``taken``
    stays open and another page of the same person (same context, same session) opens beside it. Each
    miss adds a socket to ``taken`` until the other process has strictly fewer, so this never depends on
    how nginx breaks a tie, and it reads where each socket landed rather than assuming it. The pages
    that missed are closed once one has landed (their presence leaves with them).
    """
    missed = []
    page, sockets = open_workbook(context, stack, username, workbook_id)
    while sockets.current() == taken:
        missed.append(page)
        assert len(missed) < MAX_PAGES, f"every socket of {username} went to {taken}"
        page = context.new_page()
        sockets = SocketUpstreams(page)
        page.goto(f"{stack.url}/workbooks/{workbook_id}/")
        wait_for_workbook(page)
    for extra in missed:
        extra.close()
    return page, sockets


class ThroughNginxBrowserTest:
    def test_two_pages_on_different_daphne_processes_see_each_others_edits(self, stack, workbook, contexts):
        workbook_id, api, _ = workbook  # owned by alice, bob is an editor; api is alice's session through nginx
        daphnes = {f"127.0.0.1:{port}" for port in stack.daphne_ports}

        alice, alice_sockets = open_workbook(contexts(), stack, "alice", workbook_id)
        alice_upstream = alice_sockets.current()
        assert alice_upstream in daphnes
        bob, bob_sockets = open_workbook_on_another_daphne(contexts(), stack, "bob", workbook_id, alice_upstream)
        bob_upstream = bob_sockets.current()
        assert {alice_upstream, bob_upstream} == daphnes

        expect(alice.locator("#presence li")).to_have_text(["bob"])
        expect(bob.locator("#presence li")).to_have_text(["alice"])
        expect(alice.locator("#grid .ht_master thead th").nth(1)).to_have_text("A")

        type_into(alice, 1, 1, "hello")
        expect(cell(bob, 1, 1)).to_have_text("hello")
        type_into(bob, 0, 4, "from bob")
        expect(cell(alice, 0, 4)).to_have_text("from bob")

        paste_insert_delete_select(api, workbook_id, alice, bob)
        changes = changes_since(api, workbook_id, 0)
        assert [(c["kind"], c["by"]["name"]) for c in changes] == [
            ("set", "alice"),
            ("set", "bob"),
            ("set", "bob"),
            ("insert_rows", "alice"),
            ("delete_rows", "bob"),
        ]
        # Each page kept the one socket it started with: every edit above crossed between the two processes.
        assert (alice_sockets.upstreams, bob_sockets.upstreams) == ([alice_upstream], [bob_upstream])


class NothingLostThroughNginxTest:
    """What the page does so that nothing typed is lost, with its socket behind nginx on a daphne process
    of its own, the other person's on the other process."""

    def test_offline_edit_kept_noticed_and_its_overwrite_told_to_both(self, stack, workbook, contexts):
        workbook_id, api, _ = workbook
        alice, alice_sockets = open_workbook(contexts(), stack, "alice", workbook_id)
        bob, _ = open_workbook_on_another_daphne(contexts(), stack, "bob", workbook_id, alice_sockets.current())
        expect(bob.locator("#presence li")).to_have_text(["alice"])

        alice.context.set_offline(True)
        expect(alice.locator("#connection")).to_have_attribute("data-state", "offline", timeout=DEAD_CONNECTION_MS)
        type_into(alice, 17, 2, "alice, offline")
        expect(alice.locator("#connection")).to_have_text("offline — 1 edit waiting")
        # The server closes the socket that went silent, on its daphne process: alice leaves bob's list.
        expect(bob.locator("#presence li")).to_have_count(0, timeout=SILENT_SOCKET_MS)
        type_into(bob, 17, 2, "bob, online")
        alice.context.set_offline(False)

        expect(cell(bob, 17, 2)).to_have_text("alice, offline")
        expect(alice.locator("#alerts li")).to_contain_text('Your edit made earlier replaced what bob wrote since in C18 ("bob, online").')
        bob_alert = bob.locator("#alerts li")
        expect(bob_alert).to_contain_text('alice\'s edit made earlier replaced what you wrote in C18 ("bob, online").')
        bob_alert.get_by_role("button", name="Put back").click()
        expect(cell(alice, 17, 2)).to_have_text("bob, online")
        assert snapshot_values(api, workbook_id)[1][17][2] == "bob, online"

    def test_edits_waiting_when_the_page_reloads_are_sent_by_the_reloaded_page(self, stack, workbook, contexts):
        workbook_id, api, _ = workbook
        alice, _ = open_workbook(contexts(), stack, "alice", workbook_id)
        reachable = []  # until then the page's sockets open to nothing (Playwright answers them)
        alice.route_web_socket("**/ws/**", lambda ws: ws.connect_to_server() if reachable else None)
        alice.evaluate("window.tabula.socket.ws.close()")
        type_into(alice, 3, 3, "kept across the reload")
        expect(alice.locator("#connection")).to_have_text("offline — 1 edit waiting")

        reachable.append(True)
        alice.reload()

        wait_for_workbook(alice)
        alice.wait_for_function("() => window.tabula.edits.waiting === 0")
        assert snapshot_values(api, workbook_id)[1][3][3] == "kept across the reload"
