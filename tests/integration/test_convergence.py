"""Randomised convergence: six sockets (two users) on two daphne processes send concurrent random edits
and sheet operations (add, duplicate, rename, move, delete), built from ids each client's own
(lagging) model knows, so many name rows, columns and sheets deleted meanwhile, and undo and redo
their own (each socket is a session of its own). Every socket must see every change
in revision order with no gap, and once everyone is quiet every client's model must equal the
server's snapshot, whose change log has no hole; and the workbook at any revision (``?rev=R``) must be
what a client saw at that revision.

Four more clients are browser pages whose network fails (``Page``, through a relay the test stalls and
cuts, or their own socket closed). Offline they keep editing from their stale model into their outbox;
each comes back either on a new socket (sync from its model's revision, resend the outbox) or by
reloading (a fresh snapshot over HTTP, a new socket, the stored outbox resent), to either daphne.
Every op id any client made must then be in the change log exactly once or have been refused, never
both, and every change a page's sockets delivered must agree with the log.

The seed is fixed (TABULA_CONVERGENCE_SEED overrides it) and printed in every failure message.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.integration.clients import Follower, Page, WorkbookSocket
from workbooks.domain.formulas.engine import Book
from workbooks.domain.formulas.formula import from_wire
from workbooks.domain.formulas.stored import to_wire
from workbooks.domain.grid import Grid

pytestmark = pytest.mark.processes

SEED = int(os.environ.get("TABULA_CONVERGENCE_SEED", "20240611"))
CLIENTS = 6
PAGES = 4
OPS_PER_CLIENT = 60
OUTAGES_PER_PAGE = 3
MAX_PAUSE = 0.04  # seconds between one client's operations; concurrency comes from the six of them
VALUES = ["", "x", "hello", "ünïcode ✓", 0, 1, -7, 3.25, 1e20, True, False, None]
# Formulas, read at the revision the sender's model had: references that cells deleted or moved
# meanwhile follow or break (#REF!), ranges, another sheet, a cycle now and then.
FORMULAS = ["=A1+1", "=SUM(A:A)", "=B2*2", "=COUNT(A1:C3)", "=IFERROR(A1/B1,0)", '=A2&"!"', "=MAX(B:B)+Sheet1!A1", "=C3", "=A1"]


def random_operation(rng: random.Random, model: Grid, op_id: str, session: str) -> dict:
    """An operation chosen from what this client's model knows now (it may be stale by the time it
    lands), made in the client's ``session``."""
    return {**random_kind(rng, model, op_id), "session": session}


def random_kind(rng: random.Random, model: Grid, op_id: str) -> dict:
    """An operation on a sheet of the model (grid operations name it), or on the sheets themselves."""
    sheet = model.order[0] if rng.random() < 0.6 else rng.choice(model.order)
    rows, cols = model.sheets[sheet].rows, model.sheets[sheet].cols
    choices = ["set"] * 18 + ["undo", "redo"] * 3
    choices += ["insert_rows"] * 3 * (len(rows) < 30) + ["delete_rows"] * 3 * (len(rows) > 3)
    choices += ["insert_cols"] * 3 * (len(cols) < 10) + ["delete_cols"] * 3 * (len(cols) > 2)
    choices += ["add_sheet"] * (len(model.order) < 4) + ["duplicate_sheet"] * (len(model.order) < 4) + ["rename_sheet", "move_sheet"]
    choices += ["delete_sheet"] * (len(model.order) > 2)
    kind = rng.choice(choices) if rows and cols else rng.choice(["insert_rows", "insert_cols"])
    if kind in ("undo", "redo"):
        return {"type": kind, "op": op_id}
    if kind == "add_sheet":
        return {"type": kind, "op": op_id, "name": f"S {op_id}", "before": rng.choice([None, *model.order]), "rows": 3, "cols": 2}
    if kind == "duplicate_sheet":
        return {"type": kind, "op": op_id, "sheet": sheet, "name": f"D {op_id}"}
    if kind == "rename_sheet":
        return {"type": kind, "op": op_id, "sheet": sheet, "name": f"R {op_id}"}
    if kind == "move_sheet":
        return {"type": kind, "op": op_id, "sheet": sheet, "before": rng.choice([None, *(s for s in model.order if s != sheet)])}
    if kind == "delete_sheet":
        return {"type": kind, "op": op_id, "sheet": sheet}
    if kind == "set":
        cells = [
            {
                "row": rng.choice(rows),
                "col": rng.choice(cols),
                **({"formula": rng.choice(FORMULAS)} if rng.random() < 0.3 else {"value": rng.choice(VALUES)}),
            }  # noqa: E501
            for _ in range(rng.randint(1, 4))
        ]
        return {"type": "set", "op": op_id, "sheet": sheet, "cells": cells, "rev": model.rev}
    if kind in ("insert_rows", "insert_cols"):
        ids = rows if kind == "insert_rows" else cols
        before = rng.choice([None, *ids]) if ids else None
        return {"type": kind, "op": op_id, "sheet": sheet, "before": before, "count": rng.randint(1, 2)}
    ids = rows if kind == "delete_rows" else cols
    return {"type": kind, "op": op_id, "sheet": sheet, ("rows" if kind == "delete_rows" else "cols"): rng.sample(ids, rng.randint(1, 2))}


async def edit(rng: random.Random, name: str, follower: Follower, sent: list[str]) -> None:
    for i in range(OPS_PER_CLIENT):
        op_id = f"{name}-{i}"
        await follower.socket.send(random_operation(rng, follower.model, op_id, name))
        sent.append(op_id)
        await asyncio.sleep(rng.uniform(0, MAX_PAUSE))


@dataclass(frozen=True)
class Outage:
    """One time a page loses the server, counted in the page's own operations."""

    at: int  # the operation before which it starts
    how: str  # "cut": the network passes nothing for `stalled` operations, then resets; "close": the page closes its socket
    stalled: int
    offline: int  # operations made offline, into the outbox only
    back: str  # "reconnect" (new socket, sync from the model, resend) or "reload" (snapshot, new socket, sync, resend)
    daphne: int  # the process it comes back to


def outage_plan(rng: random.Random, page: int) -> list[Outage]:
    """Drawn from its own generator, so a seed always makes the same outages (the operations depend on
    timing: each is drawn from a model). Each page's first outage is a cut; half the pages come back
    from it by reloading, half by reconnecting."""
    outages, at = [], rng.randint(2, 12)
    for k in range(OUTAGES_PER_PAGE):
        how = "cut" if k == 0 or rng.random() < 0.7 else "close"
        back = ("reload" if page % 2 == 0 else "reconnect") if k == 0 else rng.choice(["reload", "reconnect"])
        outage = Outage(at, how, rng.randint(0, 3) if how == "cut" else 0, rng.randint(0, 12), back, rng.randrange(2))
        outages.append(outage)
        at += outage.stalled + outage.offline + rng.randint(3, 12)
    return outages


async def roam(rng: random.Random, name: str, page: Page, plan: list[Outage]) -> None:
    """Makes the page's operations, losing the server and coming back as ``plan`` says (whatever of it
    falls after the last operation happens then)."""
    steps: list[tuple[int, Callable[[], Awaitable[None]]]] = []
    for outage in plan:
        if outage.how == "cut":
            steps += [(outage.at, page.stall), (outage.at + outage.stalled, page.cut)]
        else:
            steps.append((outage.at, page.close))
        back = page.reload if outage.back == "reload" else page.reconnect
        steps.append((outage.at + outage.stalled + outage.offline, lambda back=back, d=outage.daphne: back(daphne=d)))
    steps.sort(key=lambda step: step[0])  # stable: an outage's steps keep their order
    for i in range(OPS_PER_CLIENT):
        while steps and steps[0][0] <= i:
            await steps.pop(0)[1]()
        await page.make(random_operation(rng, page.model, f"{name}-{i}", name))
        await asyncio.sleep(rng.uniform(0, MAX_PAUSE))
    for _, step in steps:
        await step()


def same_change(answer: dict, logged: dict | None) -> bool:
    """The same change, ``overwritten`` aside (set changes are gaining it; not compared yet)."""
    return logged is not None and {k: v for k, v in answer.items() if k != "overwritten"} == {k: v for k, v in logged.items() if k != "overwritten"}


def formula_values(snapshot: dict) -> dict:
    """Each formula cell's value in a snapshot, by (row id, column id)."""
    values = {}
    for sheet in snapshot["sheets"]:
        cols = [c["id"] for c in sheet["columns"]]
        by_row = {row["id"]: row["values"] for row in sheet["rows"]}
        for f in sheet["formulas"]:
            at = cols.index(f["col"])
            values[(f["row"], f["col"])] = by_row[f["row"]][at] if at < len(by_row[f["row"]]) else None
    return values


def computed_afresh(snapshot: dict) -> dict:
    """The formula cells' values computed from the snapshot's literals and formulas by a new engine."""
    book = Book(sheets=[(s["id"], s["name"], [c["id"] for c in s["columns"]], [r["id"] for r in s["rows"]]) for s in snapshot["sheets"]])
    cells = []
    for sheet in snapshot["sheets"]:
        formulas = {(f["row"], f["col"]): from_wire(f["parts"]) for f in sheet["formulas"]}
        cols = [c["id"] for c in sheet["columns"]]
        for row in sheet["rows"]:
            for col, value in zip(cols, row["values"], strict=False):
                key = (row["id"], col)
                cells.append((key, formulas.get(key, value)))
    book.load(cells)
    book.recalculate_all()
    return {key: to_wire(book.computed[key]) for key in book.cells}


async def request(session, method: str, path: str) -> tuple[int, dict]:
    return await asyncio.to_thread(session.request, method, path)


class ConvergenceTest:
    async def test_random_concurrent_edits_on_two_daphnes_converge_on_snapshot(self, deployment, shared_workbook):
        print(f"convergence seed: {SEED} (rerun with TABULA_CONVERGENCE_SEED={SEED})")
        where = f"seed {SEED}"
        workbook_id = shared_workbook["id"]
        sessions = {name: deployment.session(name) for name in ("ada", "bob")}
        followers, tasks, pages = [], [], []
        for i in range(CLIENTS):
            socket = await WorkbookSocket.open(deployment, sessions["ada" if i % 2 == 0 else "bob"], workbook_id, daphne=i % 2)
            assert socket.hello["rev"] == shared_workbook["rev"] == 0, where
            follower = Follower(socket, Grid.from_snapshot(shared_workbook), record=i == 0)
            followers.append(follower)
            tasks.append(asyncio.create_task(follower.run()))
        sent: list[list[str]] = [[] for _ in followers]
        try:
            for k in range(PAGES):
                page = Page(f"p{k}", deployment, sessions["bob" if k % 2 == 0 else "ada"], workbook_id)
                pages.append(page)
                await page.load()
                await page.open(daphne=k % 2)
            rng = random.Random(SEED)
            editors = [edit(random.Random(rng.random()), f"c{i}", f, sent[i]) for i, f in enumerate(followers)]
            plans = [outage_plan(random.Random(rng.random()), k) for k in range(PAGES)]
            roamers = [roam(random.Random(rng.random()), page.name, page, plan) for page, plan in zip(pages, plans, strict=True)]
            await asyncio.gather(*editors, *roamers)

            # Quiet: every operation gets its answer (its change, or an error) on its own socket, and
            # every page is back, synced, with an empty outbox.
            for follower, ops in zip(followers, sent, strict=True):
                await follower.wait_until(lambda f=follower, ops=ops: all(op in f.answers for op in ops), timeout=60)
            for page in pages:
                await page.wait_until(lambda p=page: p.quiet, timeout=60)
            status, snapshot = await request(sessions["ada"], "GET", f"/api/workbooks/{workbook_id}/")
            assert status == 200, where
            for client in [*followers, *pages]:
                await client.wait_until(lambda c=client: c.model.rev >= snapshot["rev"], timeout=30)
        finally:
            for follower in followers:
                await follower.socket.close()
            await asyncio.gather(*tasks)
            for page in pages:
                await page.finish()
        assert not [p for page in pages for p in page.problems], (where, [page.problems for page in pages])

        answers = {op: f.answers[op] for f, ops in zip(followers, sent, strict=True) for op in ops}
        for page in pages:
            assert sorted(page.answers) == sorted(page.made), (where, page.name, page.outbox)
            answers.update(page.answers)
        made = [op for ops in sent for op in ops] + [op for page in pages for op in page.made]
        assert len(made) == len(set(made)) == len(answers), where
        refused = {op: a["code"] for op, a in answers.items() if a["type"] == "error"}
        applied = [op for op, a in answers.items() if a["type"] == "change"]
        counts = collections.Counter()
        for page in pages:
            counts.update(page.counts)
        print(f"{len(applied)} changes, {len(refused)} refused; pages: {dict(sorted(counts.items()))}")
        unexpected = {op: answers[op]["message"] for op, code in refused.items() if code not in ("not_found", "conflict")}
        assert not unexpected, (where, unexpected)  # conflict: nothing to undo or redo
        assert snapshot["rev"] == len(applied), where
        for client in [*followers, *pages]:
            assert client.model.matches(snapshot), (where, client.model.values(), snapshot)
        status, log = await request(sessions["bob"], "GET", f"/api/workbooks/{workbook_id}/changes?since=0")
        assert status == 200, where
        assert [c["rev"] for c in log["changes"]] == list(range(1, snapshot["rev"] + 1)), where
        assert sorted(c["op"] for c in log["changes"]) == sorted(applied), where
        # None lost, none applied twice: every op id made is in the log once or was refused, never both.
        in_log = collections.Counter(c["op"] for c in log["changes"])
        assert [op for op, n in in_log.items() if n > 1] == [], where
        assert set(in_log) | set(refused) == set(made) and not set(in_log) & set(refused), where
        # Each op's answer is its change in the log, the same when a resent op got its original back.
        by_rev = {c["rev"]: c for c in log["changes"]}
        wrong = {op: (a, by_rev.get(a["rev"])) for op, a in answers.items() if a["type"] == "change" and not same_change(a, by_rev.get(a["rev"]))}
        assert not wrong, (where, wrong)
        assert all(f.seen == [(c["rev"], c["op"]) for c in log["changes"]] for f in followers), where
        for page in pages:
            assert [(rev, op) for rev, op in page.received if by_rev.get(rev, {}).get("op") != op] == [], (where, page.name)
            assert [rev for rev, _ in page.applied] == sorted({rev for rev, _ in page.applied}), (where, page.name, page.applied)
        assert counts["reloads"] and counts["reconnects"], (where, counts)
        replayed = Grid.from_snapshot(shared_workbook)
        for change in log["changes"]:
            replayed.apply(change)
        assert replayed.matches(snapshot), where
        # Guarantee 6: the snapshot's values are what its literals and formulas give, computed afresh.
        assert any("parts" in cell for c in log["changes"] for cell in c.get("cells", ())), where  # formulas were written
        fresh, kept = computed_afresh(snapshot), formula_values(snapshot)
        assert fresh == kept, (where, {key: (fresh.get(key), kept.get(key)) for key in {*fresh, *kept} if fresh.get(key) != kept.get(key)})
        kinds = {c["kind"] for c in log["changes"]}
        assert kinds == {
            *("set", "insert_rows", "delete_rows", "insert_cols", "delete_cols", "batch"),
            *("add_sheet", "duplicate_sheet", "rename_sheet", "move_sheet", "delete_sheet"),
        }, (where, kinds)
        assert "undo_of" in {key for c in log["changes"] for key in c}, where  # a redo is rarer: any edit of the session empties its list
        # The workbook at a revision is what a client saw then.
        states = followers[0].states
        for rev in sorted(random.Random(SEED).sample(sorted(states), 12)):
            status, then = await request(sessions["bob"], "GET", f"/api/workbooks/{workbook_id}/?rev={rev}")
            assert status == 200 and states[rev].matches(then), (where, rev, states[rev].values(), then)
