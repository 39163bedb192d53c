"""The pages around the grid, in Chromium: they fit a phone, presence names are readable, errors and
accounts lead somewhere.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests import support
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import new_context, policy_refusals, wait_for_workbook
from workbooks.domain.rules import PALETTE

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LONG_NAMES = (
    "Quarterly budget for the north-eastern regional offices, with every cost centre 2025",
    "Supercalifragilisticexpialidocious_planning_workbook_version_two_final_final",
    "Team",
)
LONG_USERS = ("a-person-with-a-rather-long-username", "averyveryverylongusernamewithoutanybreaksatall")

# The elements matching a selector that reach past the viewport's right edge, or past the card they are in.
OUTSIDE = """(selector) => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || getComputedStyle(el).visibility === "hidden") continue;
    const card = el.closest(".card")?.getBoundingClientRect();
    if (box.right > width + 0.5 || (card && box.right > card.right + 0.5)) out.push(el.outerHTML.slice(0, 80));
  }
  return out;
}"""


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2's relative luminance of an sRGB colour."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    lighter, darker = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """ "#rrggbb" or "#rgb" as (r, g, b)."""
    digits = colour[1:] if len(colour) == 7 else "".join(c * 2 for c in colour[1:])
    return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))


def css_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(c) for c in re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(, 1)?\)", colour).groups()[:3])


@pytest.fixture(scope="module")
def crowded(site):
    """olivia's workbooks with long names, each shared with people with long names; the first one's id."""
    for username in LONG_USERS:
        support.create_user(site.env, username, PASSWORD)
    owner = site.api("olivia")
    ids = []
    for name in LONG_NAMES:
        status, snapshot = owner.request("POST", "/api/workbooks/", {"name": name, "rows": 10, "cols": 5})
        assert status == 201, snapshot
        ids.append(snapshot["id"])
        for username in ("edgar", *LONG_USERS):
            status, body = owner.request("PUT", f"/api/workbooks/{snapshot['id']}/members/{username}", {"role": "editor"})
            assert status in (200, 201), body
    return ids[0]


@pytest.fixture
def visit(browser, site):
    """A logged-in page at a viewport size, in a browser context of its own. Whatever the test does,
    no page breaks its Content-Security-Policy."""
    contexts, refused = [], []

    def open_page(username: str, viewport: dict = DESKTOP):
        context = new_context(browser)
        refused.append(policy_refusals(context))
        contexts.append(context)
        page = context.new_page()
        page.set_viewport_size(viewport)
        log_in(page, site.base_url, username)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not any(refused), refused


def log_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


class FitTest:
    @pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
    def test_list_share_and_workbook_pages_fit_the_screen_with_long_names(self, site, visit, crowded, viewport):
        page = visit("olivia", viewport)
        # The grid scrolls inside its own box on the workbook page; the bar above it must fit.
        for path, selector in (("/", "body *"), (f"/workbooks/{crowded}/share", "body *"), (f"/workbooks/{crowded}/", ".topbar *")):
            page.goto(site.base_url + path)
            if selector == ".topbar *":
                wait_for_workbook(page)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], path
            assert page.evaluate(OUTSIDE, selector) == [], path


class PresenceColourTest:
    def test_every_palette_colour_gets_the_more_readable_of_black_and_white(self, site, browser):
        context = new_context(browser)
        page = context.new_page()
        page.goto(f"{site.base_url}/accounts/login/")
        chosen = page.evaluate(
            "async (colours) => { const { textColorOn } = await import('/static/tabula/js/presence.js'); "
            "return colours.map((c) => textColorOn(c)); }",
            list(PALETTE),
        )
        context.close()
        black, white = (0, 0, 0), (255, 255, 255)
        for colour, text in zip(PALETTE, chosen, strict=True):
            background = hex_rgb(colour)
            best = "#000" if contrast_ratio(background, black) >= contrast_ratio(background, white) else "#fff"
            assert text == best, colour
            assert contrast_ratio(background, hex_rgb(text)) >= 4.5, colour

    def test_names_on_the_presence_pills_meet_aa_contrast(self, site, pages, crowded):
        olivia = pages("olivia", crowded)
        for username in ("edgar", *LONG_USERS):
            pages(username, crowded)
        pills = olivia.locator("#presence li")
        expect(pills).to_have_count(3)
        for i in range(3):
            text, background = pills.nth(i).evaluate("li => [getComputedStyle(li).color, getComputedStyle(li).backgroundColor]")
            assert contrast_ratio(css_rgb(text), css_rgb(background)) >= 4.5, (pills.nth(i).text_content(), text, background)


class DeleteAsksFirstTest:
    def test_delete_on_the_list_asks_and_a_no_keeps_the_workbook(self, site, visit):
        status, snapshot = site.api("olivia").request("POST", "/api/workbooks/", {"name": "Keep or drop", "rows": 1, "cols": 1})
        assert status == 201, snapshot
        page = visit("olivia")
        row = page.locator("tr", has_text="Keep or drop")
        asked = []

        def answer(dialog, accept):
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", lambda dialog: answer(dialog, False))
        row.get_by_role("button", name="Delete").click()
        page.wait_for_timeout(500)
        assert asked == ["Delete this workbook and its history?"]
        assert site.api("olivia").request("GET", f"/api/workbooks/{snapshot['id']}/")[0] == 200

        page.once("dialog", lambda dialog: answer(dialog, True))
        row.get_by_role("button", name="Delete").click()
        page.wait_for_load_state()
        expect(page.locator("tr", has_text="Keep or drop")).to_have_count(0)
        assert site.api("olivia").request("GET", f"/api/workbooks/{snapshot['id']}/")[0] == 404


class NotFoundPageTest:
    def test_a_missing_workbook_page_leads_back_to_my_workbooks(self, site, visit):
        page = visit("edgar", PHONE)
        page.goto(f"{site.base_url}/workbooks/987654/")
        expect(page.locator("h1")).to_have_text("Not found")
        page.get_by_role("link", name="My workbooks").click()
        page.wait_for_url(f"{site.base_url}/")
        expect(page.locator("h1")).to_have_text("My workbooks")


class AccountMenuTest:
    def test_the_menu_opens_closes_and_leads_to_a_working_password_change(self, site, visit):
        support.create_user(site.env, "maria", PASSWORD)
        page = visit("maria", PHONE)
        menu = page.locator("details.account")
        change = menu.get_by_role("link", name="Change password")
        expect(menu.locator("summary")).to_have_text("maria")

        menu.locator("summary").click()
        expect(change).to_be_visible()
        page.keyboard.press("Escape")
        expect(change).to_be_hidden()
        menu.locator("summary").click()
        page.locator("h1").click()  # a press elsewhere closes it too
        expect(change).to_be_hidden()

        menu.locator("summary").click()
        change.click()
        page.fill("input[name=old_password]", PASSWORD)
        page.fill("input[name=new_password1]", "maria-has-a-new-passphrase")
        page.fill("input[name=new_password2]", "maria-has-a-new-passphrase")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("h1")).to_have_text("Password changed")

        menu.locator("summary").click()
        menu.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/accounts/login/")
        log_in(page, site.base_url, "maria", "maria-has-a-new-passphrase")
        expect(page.locator("h1")).to_have_text("My workbooks")


class PasswordResetTest:
    def test_a_forgotten_password_is_reset_through_the_link_the_server_prints(self, site, browser):
        """The embedded mode has no mail server: the reset mail is printed on the server's console."""
        support.create_user(site.env, "rosa", PASSWORD)
        code = "from django.contrib.auth.models import User; User.objects.filter(username='rosa').update(email='rosa@example.com')"
        support.manage(site.env, "shell", "-c", code)
        context = new_context(browser)
        page = context.new_page()
        page.goto(f"{site.base_url}/accounts/login/")
        page.get_by_role("link", name="Forgot your password?").click()
        page.fill("input[name=email]", "rosa@example.com")
        page.get_by_role("button", name="Send the link").click()
        expect(page.locator("h1")).to_have_text("Check your email")

        link = None
        deadline = time.monotonic() + 10
        while link is None and time.monotonic() < deadline:
            found = re.findall(r"http://127\.0\.0\.1:\d+/accounts/reset/\S+/", site.server.log_path.read_text(errors="replace"))
            link = found[-1] if found else time.sleep(0.1)
        assert link, site.server.log()
        page.goto(link)
        page.fill("input[name=new_password1]", "rosa-remembers-this-one")
        page.fill("input[name=new_password2]", "rosa-remembers-this-one")
        page.get_by_role("button", name="Set password").click()
        expect(page.locator("h1")).to_have_text("Password set")
        page.get_by_role("link", name="Log in").click()
        log_in(page, site.base_url, "rosa", "rosa-remembers-this-one")
        expect(page.locator("h1")).to_have_text("My workbooks")
        context.close()
