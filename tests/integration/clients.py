"""A socket client for the integration tests: the ``websockets`` library against a real daphne, with the
session cookie and Origin a browser would send, reading messages the way the contract describes them."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import websockets
from websockets.asyncio.client import connect

from sheet.domain.grid import Grid

if TYPE_CHECKING:
    from tests.integration.conftest import Deployment

WAIT = 20  # seconds to wait for an expected message before failing


class SheetSocket:
    def __init__(self, ws, hello: dict):
        self.ws = ws
        self.hello = hello

    @classmethod
    async def open(cls, deployment: Deployment, session, sheet_id: int, *, daphne: int) -> SheetSocket:
        ws = await connect(
            deployment.ws_url(daphne, f"/ws/sheets/{sheet_id}/"),
            additional_headers={"Cookie": session.cookie_header()},
            origin=deployment.origin(daphne),
            open_timeout=WAIT,
        )
        hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert hello["type"] == "hello", hello
        return cls(ws, hello)

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, *, skip=("presence",)) -> dict:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
            if message["type"] not in skip:
                return message

    async def change(self) -> dict:
        message = await self.receive()
        assert message["type"] == "change", message
        return message

    async def close_code(self) -> int:
        """Reads past pending messages until the server closes the socket; its close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), WAIT)
        except websockets.exceptions.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    async def close(self) -> None:
        await self.ws.close()


class Follower:
    """Applies every change a socket receives to its own Grid, failing on any gap or reordering."""

    def __init__(self, socket: SheetSocket, model: Grid):
        self.socket = socket
        self.model = model
        self.seen: list[tuple[int, str]] = []  # (rev, op) of every change, in arrival order
        self.answers: dict[str, dict] = {}  # op id -> the change or error that answered it
        self.problems: list[str] = []
        self.progress = asyncio.Condition()

    async def run(self) -> None:
        try:
            async for text in self.socket.ws:
                message = json.loads(text)
                kind = message["type"]
                if kind == "change":
                    if message["rev"] != self.model.rev + 1:
                        self.problems.append(f"change {message['rev']} arrived at revision {self.model.rev}")
                        return
                    self.model.apply(message)
                    self.seen.append((message["rev"], message["op"]))
                    self.answers.setdefault(message["op"], message)
                elif kind == "error":
                    self.answers[message["op"]] = message
                elif kind != "presence":
                    self.problems.append(f"unexpected {message}")
                    return
                async with self.progress:
                    self.progress.notify_all()
            self.problems.append("socket closed")
        except websockets.exceptions.ConnectionClosed as closed:
            self.problems.append(f"socket closed: {closed}")
        finally:
            async with self.progress:
                self.progress.notify_all()

    async def wait_until(self, predicate, *, timeout: float = WAIT) -> None:
        async with self.progress:
            await asyncio.wait_for(self.progress.wait_for(lambda: predicate() or bool(self.problems)), timeout)
        assert not self.problems, self.problems
