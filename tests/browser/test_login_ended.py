"""A page whose login ends: logged out in another tab, the page says so with a way to log in again that
comes back to the workbook, and the edit it had not sent yet is sent once the person is back; a password
changed in this browser keeps the page working (Django keeps that session, under a new key), while
the same person's page in another browser is logged out. In Chromium against the embedded server.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import support
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import cell, log_in_to_workbook, new_context, snapshot_values, type_into, wait_for_workbook

pytestmark = pytest.mark.browser

# Drops the page's `set` messages while saying they went: its next edit stays waiting, unacknowledged.
STALL_SETS = "() => { const s = window.tabula.socket; const send = s.send.bind(s); s.send = (m) => m.type === 'set' || send(m); }"
# Records the codes the server closed the page's socket with for good.
RECORD_CLOSES = """() => {
  const handlers = window.tabula.socket.handlers;
  const gone = handlers.onGone;
  window.closes = [];
  handlers.onGone = (code) => { window.closes.push(code); gone(code); };
}"""


@pytest.fixture
def person(site, request):
    """A user of the test's own, owning a new workbook: (username, workbook id)."""
    username = f"pat-{request.node.name[-30:]}"
    support.create_user(site.env, username, PASSWORD)
    status, snapshot = site.api(username).request("POST", "/api/workbooks/", {"name": "Mine", "rows": 5, "cols": 3})
    assert status == 201, snapshot
    return username, snapshot["id"]


@pytest.fixture
def contexts(browser):
    opened = []

    def open_context():
        opened.append(new_context(browser))
        return opened[-1]

    yield open_context
    for context in opened:
        context.close()


class LoginEndedTest:
    def test_logged_out_in_another_tab_page_asks_to_log_in_and_sends_waiting_edit_after(self, site, person, contexts):
        username, workbook_id = person
        page = contexts().new_page()
        log_in_to_workbook(page, site.base_url, username, PASSWORD, workbook_id)
        page.evaluate(STALL_SETS)
        type_into(page, 0, 0, "kept")
        page.wait_for_function("() => window.tabula.edits.waiting === 1")

        other_tab = page.context.new_page()
        other_tab.goto(f"{site.base_url}/")
        other_tab.click("details.account summary")
        other_tab.click("text=Log out")

        notice = page.locator("#notice")
        expect(notice).to_contain_text("You are logged out. Your 1 edit not sent yet is kept in this browser and sent when you are back.")
        expect(page.locator("#connection")).to_have_text("logged out")
        link = notice.locator("a")
        expect(link).to_have_text("Log in again")
        link.click()
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/workbooks/{workbook_id}/")
        wait_for_workbook(page)
        page.wait_for_function("() => window.tabula.edits.waiting === 0")
        expect(cell(page, 0, 0)).to_have_text("kept")
        assert snapshot_values(site.api(username), workbook_id)[1][0][0] == "kept"

    def test_password_changed_in_this_browser_page_goes_on_other_browser_logged_out(self, site, person, contexts):
        username, workbook_id = person
        here, elsewhere = contexts().new_page(), contexts().new_page()
        for page in (here, elsewhere):
            log_in_to_workbook(page, site.base_url, username, PASSWORD, workbook_id)
            page.evaluate(RECORD_CLOSES)

        settings_tab = here.context.new_page()
        settings_tab.goto(f"{site.base_url}/accounts/password_change/")
        settings_tab.fill("input[name=old_password]", PASSWORD)
        settings_tab.fill("input[name=new_password1]", "a-new-password-4")
        settings_tab.fill("input[name=new_password2]", "a-new-password-4")
        settings_tab.click("main button[type=submit]")
        settings_tab.wait_for_url("**/password_change/done/")

        expect(elsewhere.locator("#notice")).to_contain_text("You are logged out.")
        here.wait_for_function("() => window.closes.includes(4401)")
        expect(here.locator("#connection")).to_have_attribute("data-state", "live")
        type_into(here, 1, 1, "still working")
        here.wait_for_function("() => window.tabula.edits.waiting === 0")
        api = support.HttpSession(site.base_url).login(username, "a-new-password-4")
        assert snapshot_values(api, workbook_id)[1][1][1] == "still working"
        expect(here.locator("#notice")).not_to_contain_text("logged out")
