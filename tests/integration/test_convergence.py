"""Randomised convergence: six sockets (two users) on two daphne processes send concurrent random edits,
built from ids each client's own (lagging) model knows, so many name rows and columns deleted meanwhile.
Every socket must see every change in revision order with no gap, and once everyone is quiet every
client's model must equal the server's snapshot, whose change log has no hole.

The seed is fixed (TABULA_CONVERGENCE_SEED overrides it) and printed in every failure message.
"""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from sheet.domain.grid import Grid
from tests.integration.clients import Follower, SheetSocket

pytestmark = pytest.mark.processes

SEED = int(os.environ.get("TABULA_CONVERGENCE_SEED", "20240611"))
CLIENTS = 6
OPS_PER_CLIENT = 60
MAX_PAUSE = 0.04  # seconds between one client's operations; concurrency comes from the six of them
VALUES = ["", "x", "hello", "ünïcode ✓", 0, 1, -7, 3.25, 1e20, True, False, None]


def random_operation(rng: random.Random, model: Grid, op_id: str) -> dict:
    """An operation chosen from what this client's model knows now (it may be stale by the time it lands)."""
    rows, cols = model.rows, model.cols
    choices = ["set"] * 6
    choices += ["insert_rows"] * (len(rows) < 30) + ["delete_rows"] * (len(rows) > 3)
    choices += ["insert_cols"] * (len(cols) < 10) + ["delete_cols"] * (len(cols) > 2)
    kind = rng.choice(choices) if rows and cols else rng.choice(["insert_rows", "insert_cols"])
    if kind == "set":
        cells = [{"row": rng.choice(rows), "col": rng.choice(cols), "value": rng.choice(VALUES)} for _ in range(rng.randint(1, 4))]
        return {"type": "set", "op": op_id, "cells": cells}
    if kind in ("insert_rows", "insert_cols"):
        ids = rows if kind == "insert_rows" else cols
        before = rng.choice([None, *ids]) if ids else None
        return {"type": kind, "op": op_id, "before": before, "count": rng.randint(1, 2)}
    ids = rows if kind == "delete_rows" else cols
    return {"type": kind, "op": op_id, ("rows" if kind == "delete_rows" else "cols"): rng.sample(ids, rng.randint(1, 2))}


async def edit(rng: random.Random, name: str, follower: Follower, sent: list[str]) -> None:
    for i in range(OPS_PER_CLIENT):
        op_id = f"{name}-{i}"
        await follower.socket.send(random_operation(rng, follower.model, op_id))
        sent.append(op_id)
        await asyncio.sleep(rng.uniform(0, MAX_PAUSE))


async def request(session, method: str, path: str) -> tuple[int, dict]:
    return await asyncio.to_thread(session.request, method, path)


class ConvergenceTest:
    async def test_random_concurrent_edits_on_two_daphnes_converge_on_snapshot(self, deployment, shared_sheet):
        print(f"convergence seed: {SEED} (rerun with TABULA_CONVERGENCE_SEED={SEED})")
        where = f"seed {SEED}"
        sheet_id = shared_sheet["id"]
        sessions = {name: deployment.session(name) for name in ("ada", "bob")}
        followers, tasks = [], []
        for i in range(CLIENTS):
            socket = await SheetSocket.open(deployment, sessions["ada" if i % 2 == 0 else "bob"], sheet_id, daphne=i % 2)
            assert socket.hello["rev"] == shared_sheet["rev"] == 0, where
            follower = Follower(socket, Grid.from_snapshot(shared_sheet))
            followers.append(follower)
            tasks.append(asyncio.create_task(follower.run()))
        sent: list[list[str]] = [[] for _ in followers]
        try:
            rng = random.Random(SEED)
            await asyncio.gather(*(edit(random.Random(rng.random()), f"c{i}", f, sent[i]) for i, f in enumerate(followers)))

            # Quiet: every operation gets its answer (its change, or an error) on its own socket.
            for follower, ops in zip(followers, sent, strict=True):
                await follower.wait_until(lambda f=follower, ops=ops: all(op in f.answers for op in ops), timeout=60)
            status, snapshot = await request(sessions["ada"], "GET", f"/api/sheets/{sheet_id}/")
            assert status == 200, where
            for follower in followers:
                await follower.wait_until(lambda f=follower: f.model.rev >= snapshot["rev"], timeout=30)
        finally:
            for follower in followers:
                await follower.socket.close()
            await asyncio.gather(*tasks)

        answers = {op: f.answers[op] for f, ops in zip(followers, sent, strict=True) for op in ops}
        refused = {op: a["code"] for op, a in answers.items() if a["type"] == "error"}
        applied = [op for op, a in answers.items() if a["type"] == "change"]
        print(f"{len(applied)} changes, {len(refused)} refused")
        assert set(refused.values()) <= {"not_found"}, (where, refused)
        assert snapshot["rev"] == len(applied), where
        for follower in followers:
            assert follower.model.matches(snapshot), (where, follower.model.values(), snapshot)
        status, log = await request(sessions["bob"], "GET", f"/api/sheets/{sheet_id}/changes?since=0")
        assert status == 200, where
        assert [c["rev"] for c in log["changes"]] == list(range(1, snapshot["rev"] + 1)), where
        assert sorted(c["op"] for c in log["changes"]) == sorted(applied), where
        assert all(f.seen == [(c["rev"], c["op"]) for c in log["changes"]] for f in followers), where
        replayed = Grid.from_snapshot(shared_sheet)
        for change in log["changes"]:
            replayed.apply(change)
        assert replayed.matches(snapshot), where
        kinds = {c["kind"] for c in log["changes"]}
        assert kinds == {"set", "insert_rows", "delete_rows", "insert_cols", "delete_cols"}, (where, kinds)
