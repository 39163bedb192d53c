"""A scripted editor that behaves as the contract asks a client to (docs/protocol.md): it starts from a
snapshot, applies changes in ``rev`` order, closes gaps with ``sync``, and after a lost connection
reconnects, syncs, and resends every operation not yet acknowledged under the same op id.

It records when its connection closed and reopened and when its operations were acknowledged, so the
fault tests can report how long recovery took.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import connect

from stack.clients import HttpSession
from stack.local import LocalStack


def grid_of(snapshot: dict) -> dict[tuple, object]:
    """The snapshot's non-empty cells by (row id, column id)."""
    cols = [c["id"] for c in snapshot["sheets"][0]["columns"]]
    return {
        (row["id"], col): value for row in snapshot["sheets"][0]["rows"] for col, value in zip(cols, row["values"], strict=True) if value is not None
    }


def apply_set(grid: dict, change: dict) -> None:
    assert change["kind"] == "set", change
    for cell in change["cells"]:
        key = (cell["row"], cell["col"])
        if cell["value"] is None:
            grid.pop(key, None)
        else:
            grid[key] = cell["value"]


@dataclass
class Editor:
    stack: LocalStack
    session: HttpSession
    workbook_id: int
    name: str
    cells: list[tuple]  # (row id, column id) this editor writes to
    interval: float = 0.05
    rev: int = 0
    grid: dict = field(default_factory=dict)
    pending: dict = field(default_factory=dict)  # op id -> message, in sending order
    acked: dict = field(default_factory=dict)  # op id -> rev
    refused: dict = field(default_factory=dict)  # op id -> error code
    events: list = field(default_factory=list)  # (monotonic time, what, detail)
    upstreams: list = field(default_factory=list)  # the daphne process of each connection
    sent = 0

    def __post_init__(self):
        self.random = random.Random(self.name)
        self.ws = None
        self.editing = True
        self.synced = asyncio.Event()
        self.syncing = False

    def note(self, what: str, detail=None) -> None:
        self.events.append((time.monotonic(), what, detail))

    async def load(self) -> None:
        status, snapshot = await asyncio.to_thread(self.session.request, "GET", f"/api/workbooks/{self.workbook_id}/")
        assert status == 200, snapshot
        self.rev, self.grid = snapshot["rev"], grid_of(snapshot)

    # ------------------------------------------------------------ the connection

    async def run(self, stop: asyncio.Event) -> None:
        """Stays connected (reconnecting as a browser would) until ``stop`` is set."""
        await self.load()
        delay = 0.1
        while not stop.is_set():
            try:
                headers = {"Cookie": self.session.cookie_header()}
                url = f"{self.stack.ws_url}/ws/workbooks/{self.workbook_id}/"
                async with connect(url, additional_headers=headers, origin=self.stack.url, ssl=self.stack.ssl_context(), open_timeout=10) as ws:
                    self.upstreams.append(ws.response.headers.get("X-Tabula-Upstream"))
                    delay = 0.1
                    await self.converse(ws, stop)
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                self.note("failed", repr(exc))
            finally:
                if self.ws is not None:
                    self.ws = None
                    self.note("ended" if stop.is_set() else "closed")
            if not stop.is_set():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def converse(self, ws, stop: asyncio.Event) -> None:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        self.ws = ws
        self.note("hello", ws.response.headers.get("X-Tabula-Upstream"))
        await self.request_sync()
        for message in list(self.pending.values()):
            await ws.send(json.dumps(message))
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                receiving = asyncio.create_task(ws.recv())
                done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    receiving.cancel()
                    return
                await self.on_message(json.loads(receiving.result()))
        finally:
            stopping.cancel()

    async def request_sync(self) -> None:
        self.syncing = True
        self.synced.clear()
        await self.ws.send(json.dumps({"type": "sync", "since": self.rev}))

    async def on_message(self, message: dict) -> None:
        kind = message["type"]
        if kind == "change":
            op = message["op"]
            if op in self.pending:
                del self.pending[op]
                self.acked[op] = message["rev"]
                self.note("ack", op)
            if message["rev"] == self.rev + 1:
                apply_set(self.grid, message)
                self.rev += 1
                if not op.startswith(f"{self.name}-"):
                    self.note("foreign", op)
            elif message["rev"] > self.rev + 1 and not self.syncing:
                await self.request_sync()  # a gap: changes were lost on the way
        elif kind == "synced":
            self.syncing = False
            self.synced.set()
        elif kind == "error":
            if message.get("op") in self.pending:
                del self.pending[message["op"]]
                self.refused[message["op"]] = message["code"]
                self.note("error", message["code"])
        elif kind == "reload":
            await self.load()

    # ------------------------------------------------------------ editing

    async def edit(self, stop: asyncio.Event) -> None:
        """Sends a ``set`` of two or three cells every ``interval`` until ``stop`` is set."""
        while not stop.is_set():
            self.sent += 1
            op = f"{self.name}-{self.sent}"
            cells = self.random.sample(self.cells, self.random.randint(2, 3))
            message = {"type": "set", "op": op, "cells": [{"row": r, "col": c, "value": f"{op}/{i}"} for i, (r, c) in enumerate(cells)]}
            self.pending[op] = message
            if self.ws is not None:
                try:
                    await self.ws.send(json.dumps(message))
                except websockets.exceptions.ConnectionClosed:
                    pass  # resent after the reconnect
            await asyncio.sleep(self.interval)

    async def settle(self, timeout: float = 60) -> None:
        """Waits until every operation is answered (acknowledged or refused)."""
        deadline = time.monotonic() + timeout
        while self.pending or self.ws is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {len(self.pending)} operations unanswered, connected={self.ws is not None}")
            await asyncio.sleep(0.05)

    async def catch_up(self, timeout: float = 30) -> None:
        """Once nobody edits: syncs, so every change made meanwhile (and any gap) is here."""
        while self.syncing:  # a sync already under way may predate the last changes: let it finish
            await asyncio.wait_for(self.synced.wait(), timeout=timeout)
        await self.request_sync()
        await asyncio.wait_for(self.synced.wait(), timeout=timeout)

    # ------------------------------------------------------------ what happened

    def first_after(self, what: str, moment: float) -> float | None:
        return next((t for t, kind, _ in self.events if kind == what and t > moment), None)

    def closed_after(self, moment: float) -> bool:
        return self.first_after("closed", moment) is not None


class EditingSession:
    """Several editors on one workbook, editing until ``finish``; every editor then settles."""

    def __init__(self, stack: LocalStack, editors: list[Editor]):
        self.stack = stack
        self.editors = editors
        self.stop_editing = asyncio.Event()
        self.stop_connections = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def start(self, *, connected_timeout: float = 30) -> None:
        for editor in self.editors:
            self.tasks.append(asyncio.create_task(editor.run(self.stop_connections)))
        deadline = time.monotonic() + connected_timeout
        while any(e.ws is None for e in self.editors):
            assert time.monotonic() < deadline, "editors could not connect"
            await asyncio.sleep(0.05)
        for editor in self.editors:
            self.tasks.append(asyncio.create_task(editor.edit(self.stop_editing)))

    async def finish(self) -> None:
        self.stop_editing.set()
        try:
            await asyncio.gather(*(e.settle() for e in self.editors))
            await asyncio.gather(*(e.catch_up() for e in self.editors))
        finally:
            self.stop_connections.set()
            await asyncio.gather(*self.tasks, return_exceptions=True)
