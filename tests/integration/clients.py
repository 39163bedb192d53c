"""Socket clients for the integration tests: the ``websockets`` library against a real daphne, with the
session cookie and Origin a browser would send, reading messages the way the contract describes them.
``Page`` is a browser tab that can lose its connection (through a ``Relay`` the test cuts), keep
editing offline, reload, and come back."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import websockets
from websockets.asyncio.client import connect

from workbooks.domain.grid import Grid

if TYPE_CHECKING:
    from tests.integration.conftest import Deployment

WAIT = 20  # seconds to wait for an expected message before failing
PING_SECONDS = 10


class WorkbookSocket:
    def __init__(self, ws, hello: dict):
        self.ws = ws
        self.hello = hello

    @classmethod
    async def open(cls, deployment: Deployment, session, workbook_id: int, *, daphne: int, relay: Relay | None = None) -> WorkbookSocket:
        """Connects to daphne number ``daphne``, directly or through ``relay`` (which leads to it)."""
        path = f"/ws/workbooks/{workbook_id}/"
        ws = await connect(
            relay.ws_url(path) if relay else deployment.ws_url(daphne, path),
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

    def __init__(self, socket: WorkbookSocket, model: Grid, *, record: bool = False):
        self.socket = socket
        self.model = model
        # With ``record``, the grid as it was at each revision it saw (to compare with ``?rev=R``).
        self.states: dict[int, Grid] | None = {model.rev: copy.deepcopy(model)} if record else None
        self.seen: list[tuple[int, str]] = []  # (rev, op) of every change, in arrival order
        self.answers: dict[str, dict] = {}  # op id -> the change or error that answered it
        self.problems: list[str] = []
        self.progress = asyncio.Condition()

    async def run(self) -> None:
        pinging = asyncio.create_task(self.ping())
        try:
            async for text in self.socket.ws:
                message = json.loads(text)
                kind = message["type"]
                if kind == "change":
                    if message["rev"] != self.model.rev + 1:
                        self.problems.append(f"change {message['rev']} arrived at revision {self.model.rev}")
                        return
                    self.model.apply(message)
                    if self.states is not None:
                        self.states[message["rev"]] = copy.deepcopy(self.model)
                    self.seen.append((message["rev"], message["op"]))
                    self.answers.setdefault(message["op"], message)
                elif kind == "error":
                    self.answers[message["op"]] = message
                elif kind not in ("presence", "pong"):
                    self.problems.append(f"unexpected {message}")
                    return
                async with self.progress:
                    self.progress.notify_all()
            self.problems.append("socket closed")
        except websockets.exceptions.ConnectionClosed as closed:
            self.problems.append(f"socket closed: {closed}")
        finally:
            pinging.cancel()
            async with self.progress:
                self.progress.notify_all()

    async def ping(self) -> None:
        """Pings while the socket is open, as the page does: a socket that sends nothing for 30 s is
        closed (4408), and a follower done editing may wait longer than that for the others on a busy machine."""
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.sleep(PING_SECONDS)
                await self.socket.send({"type": "ping"})

    async def wait_until(self, predicate, *, timeout: float = WAIT) -> None:
        async with self.progress:
            await asyncio.wait_for(self.progress.wait_for(lambda: predicate() or bool(self.problems)), timeout)
        assert not self.problems, self.problems


class Relay:
    """The network between one client and a daphne: a TCP relay the test can break.

    ``stall`` drops everything from then on, both ways, and neither side can tell (what the client
    sends meanwhile is lost, as are the server's changes); ``cut`` resets both connections, with no
    WebSocket close, as when a laptop drops off the network."""

    def __init__(self, target: int):
        self.target = target
        self.stalled = False
        self.writers: list[asyncio.StreamWriter] = []
        self.pipes: set[asyncio.Task] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    @classmethod
    async def start(cls, target: int) -> Relay:
        relay = cls(target)
        relay.server = await asyncio.start_server(relay.accept, "127.0.0.1", 0)
        relay.port = relay.server.sockets[0].getsockname()[1]
        return relay

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self.writers += [client_writer, server_writer]
        for reader, writer in ((client_reader, server_writer), (server_reader, client_writer)):
            task = asyncio.create_task(self.pipe(reader, writer))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.stalled:
                    writer.write(data)
                    await writer.drain()
        except OSError:
            pass
        finally:
            if not self.stalled:  # one side closed: the other learns it, as through a working network
                writer.close()

    def stall(self) -> None:
        self.stalled = True

    def cut(self) -> None:
        self.stalled = True
        for writer in self.writers:
            with contextlib.suppress(OSError, AttributeError):
                # A reset, not a close: nothing still buffered on the way is delivered.
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self.server.close()

    async def close(self) -> None:
        self.cut()
        await asyncio.gather(*self.pipes, return_exceptions=True)


@dataclass
class Connection:
    """One of a page's sockets, and what the page knows about it."""

    socket: WorkbookSocket
    relay: Relay
    reader: asyncio.Task | None = None
    synced: bool = False  # its sync was answered: from then on its changes come in order, with no gap
    resent: set[str] = field(default_factory=set)  # op ids sent again on it: their original change may come back
    leaving: bool = False  # the page is ending it (or the network is about to)

    async def send(self, message: dict) -> None:
        """Sends if it can; a lost message is the outbox's business."""
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await self.socket.send(message)


class Page:
    """A browser tab on a workbook that can lose its connection, as static/tabula/js/main.js behaves.

    Every operation it makes stays in its outbox until that op's change or error arrives, across lost
    connections and reloads (the page keeps the outbox in the browser's storage); offline it goes on
    making operations into the outbox. Coming back on a new socket it syncs from its model's revision
    and sends the whole outbox again under the same op ids. Changes apply in revision order: one
    ahead of the model waits for the gap to fill, one at or below it is a duplicate (the answer to a
    resent op, or a change the sync gave too). What the contract rules out goes to ``problems``.
    """

    def __init__(self, name: str, deployment: Deployment, session, workbook_id: int):
        self.name = name
        self.deployment = deployment
        self.session = session
        self.workbook_id = workbook_id
        self.model: Grid | None = None
        self.held: dict[int, dict] = {}  # rev -> change that arrived ahead of the model
        self.outbox: dict[str, dict] = {}  # op id -> operation not answered yet, in the order made
        self.made: list[str] = []  # every op id it made
        self.answers: dict[str, dict] = {}  # op id -> the change or error that answered it
        self.applied: list[tuple[int, str]] = []  # (rev, op) of every change applied to a model, in order
        self.received: list[tuple[int, str]] = []  # (rev, op) of every change any of its sockets delivered
        self.connection: Connection | None = None
        self.problems: list[str] = []
        self.progress = asyncio.Condition()
        self.counts: collections.Counter = collections.Counter()
        self.retries: set[asyncio.Task] = set()

    @property
    def quiet(self) -> bool:
        """Online and synced, with every operation answered and no change waiting."""
        return self.connection is not None and self.connection.synced and not self.outbox and not self.held

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.name}: {text}")

    # ------------------------------------------------ what the test does with it

    async def load(self) -> None:
        """The model starts afresh from the snapshot (``GET /api/workbooks/{id}/``)."""
        status, snapshot = await asyncio.to_thread(self.session.request, "GET", f"/api/workbooks/{self.workbook_id}/")
        assert status == 200, (self.name, status, snapshot)
        self.model = Grid.from_snapshot(snapshot)
        self.held = {}

    async def open(self, *, daphne: int) -> None:
        """A new socket through a new relay: sync from the model's revision, then the outbox again."""
        relay = await Relay.start(self.deployment.daphnes[daphne].port)
        workbook_socket = await WorkbookSocket.open(self.deployment, self.session, self.workbook_id, daphne=daphne, relay=relay)
        if workbook_socket.hello["rev"] < self.model.rev:
            self.problem(f"hello at revision {workbook_socket.hello['rev']}, behind the model's {self.model.rev}")
        connection = self.connection = Connection(workbook_socket, relay)
        connection.reader = asyncio.create_task(self.read(connection))
        await connection.send({"type": "sync", "since": self.model.rev})
        for op, operation in list(self.outbox.items()):
            connection.resent.add(op)
            await connection.send(operation)
        self.counts["resent"] += len(connection.resent)

    async def make(self, operation: dict) -> None:
        """The user edits: into the outbox, and onto the socket when there is one."""
        self.outbox[operation["op"]] = operation
        self.made.append(operation["op"])
        if self.connection is not None:
            self.counts["sent into a stalled network" if self.connection.relay.stalled else "sent"] += 1
            await self.connection.send(operation)
        else:
            self.counts["made offline"] += 1

    async def stall(self) -> None:
        """The network stops passing anything; the page does not know yet."""
        self.connection.leaving = True
        self.connection.relay.stall()

    async def cut(self) -> None:
        """The network resets the connection; the page notices and is offline."""
        self.connection.leaving = True
        self.connection.relay.cut()
        await self.settle_connection()

    async def close(self) -> None:
        """The page closes its socket and is offline."""
        self.connection.leaving = True
        await self.connection.socket.close()
        await self.settle_connection()

    async def settle_connection(self) -> None:
        connection = self.connection
        await connection.reader
        await connection.relay.close()
        self.connection = None

    async def reconnect(self, *, daphne: int) -> None:
        self.counts["reconnects"] += 1
        await self.open(daphne=daphne)

    async def reload(self, *, daphne: int) -> None:
        """The tab is reloaded: model and socket are gone, the outbox is kept."""
        self.counts["reloads"] += 1
        self.model = None
        await self.load()
        await self.open(daphne=daphne)

    async def finish(self) -> None:
        for task in self.retries:
            task.cancel()
        if self.connection is not None:
            await self.close()

    async def wait_until(self, predicate, *, timeout: float = WAIT) -> None:
        async with self.progress:
            await asyncio.wait_for(self.progress.wait_for(lambda: predicate() or bool(self.problems)), timeout)
        assert not self.problems, self.problems

    # ------------------------------------------------ what the server sends it

    async def read(self, connection: Connection) -> None:
        try:
            async for text in connection.socket.ws:
                await self.receive(connection, json.loads(text))
                async with self.progress:
                    self.progress.notify_all()
            if not connection.leaving:
                self.problem("the server closed the socket")
        except websockets.exceptions.ConnectionClosed as closed:
            if not connection.leaving:
                self.problem(f"socket lost: {closed}")
        except Exception as exc:  # recorded: the test fails on it, with the page that met it
            self.problem(f"{type(exc).__name__}: {exc}")
        finally:
            async with self.progress:
                self.progress.notify_all()

    async def receive(self, connection: Connection, message: dict) -> None:
        kind = message["type"]
        if kind == "change":
            self.receive_change(connection, message)
        elif kind == "error":
            self.receive_error(connection, message)
        elif kind == "synced":
            if self.model.rev < message["rev"] or self.held:
                self.problem(f"synced at {message['rev']} with the model at {self.model.rev}, holding {sorted(self.held)}")
            connection.synced = True
        elif kind == "reload":
            self.counts["told to reload"] += 1
            connection.synced = False
            await self.load()
            await connection.send({"type": "sync", "since": self.model.rev})
        elif kind != "presence":
            self.problem(f"unexpected {message}")

    def receive_change(self, connection: Connection, change: dict) -> None:
        rev, op = change["rev"], change["op"]
        self.received.append((rev, op))
        if rev <= self.model.rev:
            # After its sync the socket sends a change at most once; only a resent op's answer may repeat one.
            if connection.synced and op not in connection.resent:
                self.problem(f"change {rev} ({op}) came again at revision {self.model.rev}, after the socket synced")
            if op in self.outbox:
                self.counts["resent, answered with the original change"] += 1
            self.settle(change)
            return
        if connection.synced and rev != self.model.rev + 1:
            self.problem(f"change {rev} arrived at revision {self.model.rev}, after the socket synced")
        self.held[rev] = change
        while (ready := self.held.pop(self.model.rev + 1, None)) is not None:
            self.model.apply(ready)
            self.applied.append((ready["rev"], ready["op"]))
            self.settle(ready)

    def receive_error(self, connection: Connection, error: dict) -> None:
        op = error["op"]
        if op not in self.made:
            self.problem(f"an error for an op it never made: {error}")
        elif error["code"] == "rate_limited" and op in self.outbox:
            self.counts["rate limited"] += 1
            task = asyncio.create_task(self.send_later(connection, op))
            self.retries.add(task)
            task.add_done_callback(self.retries.discard)
        else:
            self.settle(error)

    async def send_later(self, connection: Connection, op: str) -> None:
        await asyncio.sleep(1)
        if op in self.outbox and self.connection is connection:
            connection.resent.add(op)
            await connection.send(self.outbox[op])

    def settle(self, answer: dict) -> None:
        op = answer["op"]
        if op in self.outbox:
            del self.outbox[op]
            self.answers[op] = answer
        elif op in self.answers and self.answers[op]["type"] != answer["type"]:
            self.problem(f"{op} answered with a {answer['type']} after a {self.answers[op]['type']}: {answer}")
