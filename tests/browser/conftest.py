"""The browser tests' world: Tabula as users run it embedded (``manage.py runserver``: daphne serving the
pages, static files, API and sockets in one process, SQLite in a file, the in-memory channel layer),
and Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import support
from tests.browser.helpers import launch_chromium, log_in_to_workbook, new_context, policy_refusals

PASSWORD = "correct-horse-battery-staple"
USERS = ("olivia", "edgar", "vera")  # owner, editor, viewer


@dataclass
class Site:
    """A running Tabula: its URL, environment, and the server process (which a test may stop and restart)."""

    base_url: str
    env: dict
    server: support.ServerProcess
    tmp: Path

    def api(self, username: str) -> support.HttpSession:
        return support.HttpSession(self.base_url).login(username, PASSWORD)

    def restart(self) -> None:
        self.server.stop()
        self.server.start()


def start_server(env: dict, log_dir: Path, port: int) -> support.ServerProcess:
    args = [support.PYTHON, "manage.py", "runserver", "--insecure", "--noreload", f"127.0.0.1:{port}"]
    return support.ServerProcess(args, env, log_dir / f"runserver-{port}.log", port).start()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    env = support.app_env(database_url=f"sqlite:///{tmp / 'db.sqlite3'}", redis_url="", var_dir=tmp)
    support.manage(env, "migrate", "--noinput")
    for username in USERS:
        support.create_user(env, username, PASSWORD)
    port = support.free_port()
    server = start_server(env, tmp, port)
    yield Site(f"http://127.0.0.1:{port}", env, server, tmp)
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one module: Playwright's sync API runs an event loop of its own, which must be gone
    before the suite's asyncio tests run."""
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def pages(browser, site):
    """Opens a workbook page as a user, each in a browser context of its own (its own session cookie).
    Whatever the test does, the page never breaks its Content-Security-Policy (Chromium logs each
    refusal on the console)."""
    contexts, refused = [], []

    def open_page(username: str, workbook_id: int):
        context = new_context(browser)
        refused.append(policy_refusals(context))
        contexts.append(context)
        page = context.new_page()
        log_in_to_workbook(page, site.base_url, username, PASSWORD, workbook_id)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not any(refused), refused
