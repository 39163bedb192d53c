"""Faults that happen in production, injected into the real stack while clients edit throughout.

After each fault every client must equal the snapshot, and every change any client saw acknowledged
must be in PostgreSQL. The recovery times observed are printed in the test summary (not asserted).
"""

import asyncio
import os
import signal
import threading
import time
import urllib.error

import psycopg
import pytest

from tests.stack.conftest import record_recovery
from tests.stack.editor import EditingSession, Editor, apply_set, grid_of

pytestmark = pytest.mark.processes

EDITORS = 4


def editors_for(stack, workbook) -> list[Editor]:
    workbook_id, alice, bob = workbook
    status, snapshot = alice.request("GET", f"/api/workbooks/{workbook_id}/")
    assert status == 200
    # Few cells for many writers: every cell is written by several editors, so order matters.
    cells = [(row["id"], col["id"]) for row in snapshot["sheets"][0]["rows"][:4] for col in snapshot["sheets"][0]["columns"][:3]]
    return [Editor(stack, (alice, bob)[i % 2], workbook_id, f"e{i}", cells) for i in range(EDITORS)]


def assert_converged(stack, workbook, editors: list[Editor]) -> None:
    """Every client equals the snapshot; the log replays to it; every acknowledged op is in PostgreSQL."""
    workbook_id, alice, _ = workbook
    status, snapshot = alice.request("GET", f"/api/workbooks/{workbook_id}/")
    assert status == 200
    expected = grid_of(snapshot)
    for editor in editors:
        assert (editor.name, editor.rev) == (editor.name, snapshot["rev"])
        assert editor.grid == expected, editor.name

    status, log = alice.request("GET", f"/api/workbooks/{workbook_id}/changes?since=0")
    assert status == 200
    assert [c["rev"] for c in log["changes"]] == list(range(1, snapshot["rev"] + 1))
    replayed: dict = {}
    for change in log["changes"]:
        apply_set(replayed, change)
    assert replayed == expected  # no change is half applied: the log and the cells agree

    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT op, rev FROM workbooks_change WHERE workbook_id = %s", [workbook_id]).fetchall()
    in_database = dict(rows)
    for editor in editors:
        assert editor.acked, f"{editor.name} had nothing acknowledged"
        missing = {op: rev for op, rev in editor.acked.items() if in_database.get(op) != rev}
        assert not missing, f"{editor.name}: acknowledged but not in PostgreSQL: {missing}"
        assert not set(editor.refused) & set(in_database), f"{editor.name}: refused yet applied"


async def edit_through(stack, workbook, fault, *, before: float = 1.5, after: float = 2.0):
    """Editors edit; ``fault`` runs (in a thread) while they do; returns (editors, fault start, fault end)."""
    editors = editors_for(stack, workbook)
    session = EditingSession(stack, editors)
    await session.start()
    try:
        await asyncio.sleep(before)
        started = time.monotonic()
        # The fault may return the moment it struck, when that differs from when it was started.
        started = await asyncio.to_thread(fault, editors) or started
        ended = time.monotonic()
        await asyncio.sleep(after)
    finally:
        await session.finish()
    assert_converged(stack, workbook, editors)
    return editors, started, ended


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}s"


def slowest(values) -> float | None:
    values = list(values)
    return None if not values or None in values else max(values)


class FaultTest:
    async def test_daphne_killed_its_clients_reconnect_resend_and_converge(self, stack, workbook):
        victim = f"127.0.0.1:{stack.daphne_ports[0]}"

        def kill(editors):
            on_victim = [e for e in editors if e.upstreams[-1] == victim]
            assert on_victim and len(on_victim) < len(editors), [e.upstreams for e in editors]
            pid = stack.daphne_pid(0)
            moment = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            return moment

        editors, killed, _ = await edit_through(stack, workbook, kill)
        stack.wait_running()  # supervisor has started the killed process again
        hit = [e for e in editors if e.closed_after(killed)]
        assert hit and len(hit) < len(editors)
        reconnects = [e.first_after("hello", killed) for e in hit]
        record_recovery(
            "daphne SIGKILL",
            f"{len(hit)} of {len(editors)} sockets dropped; back after {seconds(slowest(t - killed for t in reconnects))} "
            f"(on {', '.join(e.upstreams[-1] for e in hit)}); "
            f"every editor acknowledged again after {seconds(slowest(e.first_after('ack', killed) - killed for e in editors))}",
        )

    async def test_redis_restarted_broadcasts_resume_and_gaps_fill(self, stack, workbook):
        def restart(editors):
            stack.restart_redis(down_seconds=1.0)

        editors, stopped, restarted = await edit_through(stack, workbook, restart, after=3.0)
        foreign = [e.first_after("foreign", restarted) for e in editors]
        acks = [e.first_after("ack", restarted) for e in editors]
        record_recovery(
            "Redis restart (1 s down)",
            f"{sum(e.closed_after(stopped) for e in editors)} of {len(editors)} sockets dropped; after Redis was back, "
            f"broadcasts from others arrived within {seconds(slowest(t - restarted for t in foreign if t))}, "
            f"own edits acknowledged within {seconds(slowest(t - restarted for t in acks if t))}",
        )
        assert None not in foreign and None not in acks

    async def test_postgres_refusing_connections_ops_fail_or_wait_then_resume(self, stack, workbook):
        outage = 3.0

        def refuse(editors):
            stack.postgres_outage(outage)

        editors, started, ended = await edit_through(stack, workbook, refuse, after=3.0)
        acks = [e.first_after("ack", ended) for e in editors]
        refused = sum(len(e.refused) for e in editors)
        record_recovery(
            f"PostgreSQL refusing connections ({outage:.0f} s)",
            f"{sum(e.closed_after(started) for e in editors)} of {len(editors)} sockets dropped, {refused} ops answered with an error; "
            f"edits acknowledged again within {seconds(slowest(t - ended for t in acks if t))} of the database coming back",
        )
        assert None not in acks

    async def test_gunicorn_restarted_pages_and_api_recover(self, stack, workbook):
        workbook_id, alice, _ = workbook
        polls: list[tuple[float, bool]] = []
        polling = threading.Event()

        def poll():
            while not polling.is_set():
                for path in ("/", f"/api/workbooks/{workbook_id}/"):
                    try:
                        with alice.opener.open(f"{stack.url}{path}", timeout=10) as response:
                            ok = response.status == 200
                    except (urllib.error.URLError, OSError):
                        ok = False
                    polls.append((time.monotonic(), ok))
                time.sleep(0.05)

        poller = threading.Thread(target=poll)

        def restart(editors):
            poller.start()
            time.sleep(0.5)
            stack.restart_gunicorn()

        try:
            editors, started, ended = await edit_through(stack, workbook, restart)
        finally:
            polling.set()
            poller.join()
        failures = [t for t, ok in polls if not ok]
        recovered = next((t for t, ok in polls if ok and t > (failures[-1] if failures else started)), None)
        record_recovery(
            "gunicorn restart (supervisorctl restart)",
            f"{len(failures)} of {len(polls)} page and API requests failed; "
            f"serving again {seconds(recovered - started if recovered else None)} after the restart began "
            f"(the restart command took {ended - started:.2f}s); sockets dropped: {sum(e.closed_after(started) for e in editors)}",
        )
        assert recovered is not None
        assert polls[-1][1] and polls[-2][1]
