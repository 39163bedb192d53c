"""One production-shaped stack (stack/local.py) shared by the tests of this folder."""

import shutil

import pytest

from stack.local import LocalStack

REQUIRED = {"nginx": "nginx", "supervisord": "supervisor", "redis-server": "redis-server"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    missing = [package for command, package in REQUIRED.items() if shutil.which(command) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)}; scripts/test installs them")
    # These tests put one workbook's sockets on both daphne processes, to test what passes between them;
    # the site as shipped keeps a workbook on one process (test_stack.ShippedRoutingTest).
    with LocalStack(tmp_path_factory.mktemp("stack"), spread_workbooks=True) as running:
        yield running


@pytest.fixture
def workbook(stack):
    """A fresh 20 x 5 workbook owned by alice, shared with bob as an editor; returns (id, alice, bob)."""
    alice = stack.session("alice", "alice-password-1")
    bob = stack.session("bob", "bob-password-1")
    status, created = alice.request("POST", "/api/workbooks/", {"name": "stack test", "rows": 20, "cols": 5})
    assert status == 201, created
    status, body = alice.request("PUT", f"/api/workbooks/{created['id']}/members/bob", {"role": "editor"})
    assert status in (200, 201), body
    return created["id"], alice, bob


RECOVERIES: list[tuple[str, str]] = []


def record_recovery(fault: str, observed: str) -> None:
    """Keeps what a fault test observed, for the summary at the end of the run."""
    RECOVERIES.append((fault, observed))


def pytest_terminal_summary(terminalreporter):
    if RECOVERIES:
        terminalreporter.section("recovery times observed on the local stack")
        for fault, observed in RECOVERIES:
            terminalreporter.write_line(f"{fault}: {observed}")
