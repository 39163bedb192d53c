"""Fan-out: N sockets on one workbook, W of them writing ``set`` operations at R per second for T seconds.

The same load runs against the local production stack (stack/local.py: nginx over TLS, two daphne
processes, Redis, PostgreSQL) and against the floor (bench/floor.py: a bare ``websockets`` server that
rebroadcasts every message), in the same run, and the report compares them::

    python -m bench.fanout                                   # 10 clients, 1 writer, 50 ops/s, 10 s
    python -m bench.fanout --clients 100 --writers 1 --rate 50 --seconds 30
    python -m bench.fanout --suite                           # the issues' scenarios a, b, c and u

What is measured (bench/README.md explains how to read it):
- latency from send to arrival at every *other* client: each operation's id carries the writer, its
  sequence number and the ``time.monotonic_ns()`` of the send (one clock for every process on the
  machine), so a receiver knows what it got and how long it took;
- delivered versus expected: every other client must receive every operation; Tabula's clients also
  check that ``rev`` goes up by exactly one from message to message;
- achieved rate: writers send open-loop on a fixed schedule, never waiting for an answer; how late each
  send was against its schedule is reported, so a client that fell behind shows;
- for Tabula, durable (every acknowledged operation is in the change log, at the revision its
  acknowledgement gave) and converged (each client's ``workbooks.domain.grid.Grid``, built from the
  snapshot and the changes it received, equals ``GET /api/workbooks/{id}/`` once everything is drained);
- the CPU each server process and the clients used, to see what saturates the two cores.

All clients of a run live in one asyncio process (or, with ``--procs 2``, are split over two processes,
each writer's messages still timed on the shared monotonic clock). Every phase has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for stack.local and workbooks.domain when run as a script

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from bench.floor import Floor  # noqa: E402
from workbooks.domain.grid import Grid  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MS = 1_000_000  # nanoseconds in a millisecond


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    writers: int
    rate: float  # operations per second, per writer
    seconds: float
    p99_ms: float | None = None  # the target for Tabula's p99, when there is one
    floor_ratio: float | None = None  # and for Tabula's p99 over the floor's
    undo_every: int = 0  # each writer's every n-th operation is an undo of its session's latest edit
    undo_ratio: float | None = None  # target: the undos' p99 over the edits' p99, in the same run
    numbers: bool = False  # writers write numbers (inputs formulas compute with) instead of text

    @property
    def ops_per_writer(self) -> int:
        return int(round(self.rate * self.seconds))

    def describe(self) -> str:
        return f"{self.clients} clients, {self.writers} writer{'s' if self.writers > 1 else ''} x {self.rate:g} ops/s, {self.seconds:g} s"


SUITE = [
    Scenario("a", 100, 1, 50, 30, p99_ms=30, floor_ratio=2),
    Scenario("b", 10, 4, 100, 30, p99_ms=30),
    Scenario("c", 10, 10, 100, 30, p99_ms=100),
    # Scenario a's load, every 4th operation an undo (issue "Workbooks ...": undo within 1.5x of a set).
    Scenario("u", 100, 1, 50, 30, p99_ms=30, undo_every=4, undo_ratio=1.5),
]


# ====================================================================== the client side (one process)


@dataclass
class Job:
    """What one client process does: its clients' sockets, and for writers their schedule."""

    target: str  # "tabula" or "floor"
    url: str  # the socket's URL
    origin: str | None
    cafile: str | None
    base_url: str | None  # Tabula's HTTPS address, to fetch a snapshot after a ``reload``
    clients: list[tuple[int, bool, str]]  # (client number, writes?, Cookie header)
    rate: float
    ops_per_writer: int
    tag: str  # prefix of this run's op ids
    cells: list[tuple]  # (row id, column id) the writers pick from
    undo_every: int  # see Scenario
    numbers: bool  # see Scenario
    snapshot: dict | None  # Tabula's workbook before the run
    settle_seconds: float
    drain_idle: float
    drain_cap: float


class Client:
    """One socket. Receives everything; a writer also sends on its schedule."""

    def __init__(self, worker: Worker, number: int, writer: bool, cookie: str):
        self.worker = worker
        self.number = number
        self.writer = writer
        self.cookie = cookie
        self.ws = None
        self.upstream = None
        self.hello = asyncio.Event()
        self.grid = Grid.from_snapshot(worker.job.snapshot) if worker.job.snapshot else None
        self.held: dict[int, tuple[dict, int]] = {}  # out-of-order changes, by rev
        self.syncing = False
        self.seen: dict[int, bytearray] = {}  # writer -> which of its operations arrived
        self.last_seq: dict[int, int] = {}
        self.delivered = 0  # other writers' operations, each counted once
        self.duplicates = 0
        self.stale = 0  # changes at or below the grid's rev (Tabula)
        self.order_errors = 0  # a rev that is not the next one, or a writer's sequence going back
        self.syncs = 0
        self.reloads = 0
        self.presence = 0
        self.errors: Counter = Counter()
        self.closed: str | None = None
        # writers
        self.sent = 0
        self.acked: dict[int, int] = {}  # seq -> rev (Tabula) or 0 (floor)
        self.refused = 0
        self.heard_at = self.sent_at = time.monotonic_ns()

    # ---------------------------------------------------------------- connection

    async def connect(self, gate: asyncio.Semaphore) -> None:
        job = self.worker.job
        async with gate:
            headers = {"Cookie": self.cookie} if self.cookie else None
            self.ws = await connect(
                job.url,
                additional_headers=headers,
                origin=job.origin,
                ssl=self.worker.ssl_context,
                compression=None,  # daphne does not negotiate it; the floor is told not to either
                ping_interval=None,  # the servers ping; the client answers
                max_queue=4096,
                max_size=2**21,
                open_timeout=60,
            )
            self.upstream = self.ws.response.headers.get("X-Tabula-Upstream")
            self.worker.tasks.append(asyncio.create_task(self.receive()))
            if job.target == "tabula":
                self.worker.tasks.append(asyncio.create_task(self.heartbeat()))
            if job.target == "tabula":
                await asyncio.wait_for(self.hello.wait(), timeout=60)

    async def heartbeat(self) -> None:
        """Pings as the page does (static/tabula/js/socket.js): after 5 s without a message, or 12 s
        without sending anything (Tabula closes a socket its client sent nothing on for 30 s)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(1)
                now = time.monotonic_ns()
                if now - self.heard_at > 5_000_000_000 or now - self.sent_at > 12_000_000_000:
                    self.sent_at = now
                    await self.ws.send('{"type":"ping"}')

    async def receive(self) -> None:
        on_message = self.on_tabula if self.worker.job.target == "tabula" else self.on_floor
        worker = self.worker
        now = time.monotonic_ns
        loads = json.loads
        try:
            async for text in self.ws:
                t = self.heard_at = now()
                worker.last_rx = t
                on_message(loads(text), t)
        except ConnectionClosed as exc:
            self.closed = f"{exc.rcvd.code if exc.rcvd else 'no close frame'}"
        except Exception as exc:  # a broken message must not pass silently
            self.closed = f"client error: {exc!r}"
        else:
            if not worker.closing:
                self.closed = f"{self.ws.close_code}"

    # ---------------------------------------------------------------- what arrives

    def record(self, op: str, t: int, rev: int) -> None:
        """Counts an operation of this run (op id ``tag.writer.seq.sent_ns``) and its latency."""
        parts = op.split(".")
        if len(parts) != 4 or parts[0] != self.worker.job.tag:
            return
        writer, seq, sent = int(parts[1]), int(parts[2]), int(parts[3])
        if writer == self.number:
            if seq not in self.acked:
                self.acked[seq] = rev
                self.worker.ack_latency.append(t - sent)
                self.worker.last_ack = max(self.worker.last_ack, t)
            return
        seen = self.seen.get(writer)
        if seen is None:
            seen = self.seen[writer] = bytearray(self.worker.job.ops_per_writer + 1)
        if seen[seq]:
            self.duplicates += 1
            return
        seen[seq] = 1
        if seq < self.last_seq.get(writer, -1):
            self.order_errors += 1
        self.last_seq[writer] = seq
        self.delivered += 1
        self.worker.latency.append(t - sent)
        self.worker.sent_at.append(sent)
        every = self.worker.job.undo_every
        if every:
            (self.worker.undo_latency if seq % every == every - 1 else self.worker.edit_latency).append(t - sent)

    def on_floor(self, message: dict, t: int) -> None:
        op = message.get("op")
        if op:
            self.record(op, t, 0)

    def on_tabula(self, message: dict, t: int) -> None:
        kind = message["type"]
        if kind == "change":
            self.on_change(message, t)
        elif kind == "presence":
            self.presence += 1
        elif kind == "hello":
            if message["rev"] > self.grid.rev:
                self.request_sync()
            self.hello.set()
        elif kind == "error":
            self.errors[message["code"]] += 1
            op = message.get("op") or ""
            if op.startswith(self.worker.job.tag + "."):
                self.refused += 1
        elif kind == "synced":
            self.syncing = False
            self.release_held()
            if self.held:
                self.request_sync()
        elif kind == "reload":
            self.reloads += 1
            self.worker.tasks.append(asyncio.create_task(self.reload()))

    def on_change(self, message: dict, t: int) -> None:
        rev = message["rev"]
        grid = self.grid
        if rev <= grid.rev:
            self.stale += 1
            return
        if rev != grid.rev + 1:
            # Tabula promises every change in rev order with no gaps: this is a broken promise,
            # counted; the client then does what the protocol says (sync) so the run can go on.
            self.order_errors += 1
            self.held[rev] = (message, t)
            if not self.syncing:
                self.request_sync()
            return
        grid.apply(message)
        self.record(message["op"], t, rev)
        if self.held:
            self.release_held()

    def release_held(self) -> None:
        grid = self.grid
        for rev in [r for r in self.held if r <= grid.rev]:
            del self.held[rev]
        while grid.rev + 1 in self.held:
            message, t = self.held.pop(grid.rev + 1)
            grid.apply(message)
            self.record(message["op"], t, message["rev"])

    def request_sync(self) -> None:
        self.syncing = True
        self.syncs += 1
        self.worker.tasks.append(asyncio.create_task(self.ws.send(json.dumps({"type": "sync", "since": self.grid.rev}))))

    async def reload(self) -> None:
        job = self.worker.job
        snapshot = await asyncio.to_thread(fetch_json, f"{job.base_url}/api/workbooks/{job.snapshot['id']}/", self.cookie, job.cafile)
        self.grid = Grid.from_snapshot(snapshot)
        self.held.clear()
        self.request_sync()

    # ---------------------------------------------------------------- writing

    async def write(self, t0: int) -> None:
        """Sends ``ops_per_writer`` operations at ``rate``, each at its scheduled time (or as soon as possible after)."""
        job = self.worker.job
        rng = random.Random(f"{job.tag}-{self.number}")
        interval = 1e9 / job.rate
        late = self.worker.lateness
        tag, number = job.tag, self.number
        dumps = json.dumps
        for seq in range(job.ops_per_writer):
            due = t0 + int(seq * interval)
            now = time.monotonic_ns()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
                now = time.monotonic_ns()
            late.append(now - due)
            row, col = rng.choice(job.cells)
            op = f"{tag}.{number}.{seq}.{now}"
            value = number * 1_000_000 + seq if job.numbers else f"{number}:{seq}"
            if not job.undo_every:
                text = dumps({"type": "set", "op": op, "cells": [{"row": row, "col": col, "value": value}]})
            elif seq % job.undo_every == job.undo_every - 1:
                text = dumps({"type": "undo", "op": op, "session": f"bench-{number}"})
            else:
                text = dumps({"type": "set", "op": op, "session": f"bench-{number}", "cells": [{"row": row, "col": col, "value": value}]})
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                return
            self.sent_at = now
            self.sent += 1
            self.worker.first_send = min(self.worker.first_send, now)
            self.worker.last_send = max(self.worker.last_send, now)

    # ---------------------------------------------------------------- at the end

    def done(self, expected: int) -> bool:
        if self.closed is not None:
            return True  # nothing more will come
        if self.delivered < expected:
            return False
        if self.writer and len(self.acked) + self.refused < self.sent:
            return False
        return not (self.grid is not None and (self.held or self.syncing))


class Worker:
    """The clients of one process, driven by the orchestrator's commands over a pipe."""

    def __init__(self, job: Job, conn):
        self.job = job
        self.conn = conn
        self.ssl_context = ssl.create_default_context(cafile=job.cafile) if job.url.startswith("wss:") else None
        self.tasks: list[asyncio.Task] = []
        self.latency = array("q")  # ns, one per (operation, other client)
        self.sent_at = array("q")  # the send time of each latency above
        self.ack_latency = array("q")  # ns, writer's send to its own change (Tabula) or echo (floor)
        self.undo_latency = array("q")  # with undo_every: the latencies of the undos, and of the other edits
        self.edit_latency = array("q")
        self.lateness = array("q")  # ns, each send behind its schedule
        self.loop_lag = array("q")  # ns, how late this event loop woke up for a 5 ms timer
        self.last_rx = 0
        self.last_ack = 0
        self.first_send = math.inf
        self.last_send = 0
        self.closing = False

    async def command(self):
        return await asyncio.to_thread(self.conn.recv)

    async def run(self) -> None:
        job = self.job
        self.clients = [Client(self, number, writer, cookie) for number, writer, cookie in job.clients]
        started = time.monotonic()
        gate = asyncio.Semaphore(10)
        await asyncio.gather(*(c.connect(gate) for c in self.clients))
        self.conn.send(("connected", {"seconds": time.monotonic() - started, "upstreams": Counter(c.upstream for c in self.clients)}))

        await self.command()  # settle: wait until the presence messages of every join have passed
        await self.wait_quiet(job.settle_seconds, cap=120)
        self.conn.send(("settled", {}))

        _, t0 = await self.command()
        monitor = asyncio.create_task(self.watch_loop())
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(c.write(t0) for c in self.clients if c.writer))
        self.conn.send(("sent", {c.number: c.sent for c in self.clients if c.writer}))

        _, sent = await self.command()
        drain_started = time.monotonic()
        complete = await self.drain(sent)
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        monitor.cancel()
        self.conn.send(("drained", {"complete": complete, "seconds": time.monotonic() - drain_started}))

        _, snapshot = await self.command()
        self.conn.send(("result", self.result(sent, snapshot, cpu=cpu, wall=wall)))
        self.closing = True
        await asyncio.gather(*(c.ws.close() for c in self.clients), return_exceptions=True)
        for task in self.tasks:
            task.cancel()

    async def wait_quiet(self, quiet: float, *, cap: float) -> None:
        """Returns once no client received anything for ``quiet`` seconds (or after ``cap``)."""
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            if (time.monotonic_ns() - self.last_rx) / 1e9 >= quiet:
                return
            await asyncio.sleep(0.1)

    async def drain(self, sent: dict[int, int]) -> bool:
        """Waits until every client has every operation (and writers their answers): True, or False
        when nothing arrived for ``drain_idle`` seconds or ``drain_cap`` passed."""
        total = sum(sent.values())
        expected = {c.number: total - sent.get(c.number, 0) for c in self.clients}
        deadline = time.monotonic() + self.job.drain_cap
        while True:
            if all(c.done(expected[c.number]) for c in self.clients):
                return True
            idle = (time.monotonic_ns() - max(self.last_rx, self.last_send)) / 1e9
            if idle > self.job.drain_idle or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)

    async def watch_loop(self) -> None:
        """Measures this process's event-loop delay: when it grows, the client is the bottleneck."""
        while True:
            before = time.monotonic_ns()
            await asyncio.sleep(0.005)
            self.loop_lag.append(time.monotonic_ns() - before - 5 * MS)

    def result(self, sent: dict[int, int], snapshot: dict | None, *, cpu: float, wall: float) -> dict:
        total = sum(sent.values())
        clients = self.clients
        return {
            "clients": len(clients),
            "expected": sum(total - sent.get(c.number, 0) for c in clients),
            "delivered": sum(c.delivered for c in clients),
            "incomplete_clients": sum(1 for c in clients if c.delivered < total - sent.get(c.number, 0)),
            "duplicates": sum(c.duplicates for c in clients),
            "stale": sum(c.stale for c in clients),
            "order_errors": sum(c.order_errors for c in clients),
            "syncs": sum(c.syncs for c in clients),
            "reloads": sum(c.reloads for c in clients),
            "presence": sum(c.presence for c in clients),
            "errors": sum((c.errors for c in clients), Counter()),
            "closed": Counter(c.closed for c in clients if c.closed is not None),
            "acked": [(f"{self.job.tag}.{c.number}", seq, rev) for c in clients if c.writer for seq, rev in c.acked.items()],
            "refused": sum(c.refused for c in clients),
            "converged": None if snapshot is None else sum(1 for c in clients if c.grid.matches(snapshot)),
            "grid_revs": None if snapshot is None else sorted({c.grid.rev for c in clients}),
            "latency": self.latency,
            "sent_at": self.sent_at,
            "ack_latency": self.ack_latency,
            "undo_latency": self.undo_latency,
            "edit_latency": self.edit_latency,
            "lateness": self.lateness,
            "loop_lag": self.loop_lag,
            "first_send": self.first_send if self.first_send != math.inf else 0,
            "last_send": self.last_send,
            "last_ack": self.last_ack,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
        }


def worker_main(conn, job: Job) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator handles Ctrl-C and ends us
    try:
        asyncio.run(Worker(job, conn).run())
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("failed", repr(exc)))
        raise


def fetch_json(url: str, cookie: str, cafile: str | None) -> dict:
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, context=context, timeout=120) as response:
        return json.loads(response.read())


# ====================================================================== the orchestrator


def cpu_ticks(pid: int) -> int:
    """user + system CPU of a process so far, in clock ticks (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def postgres_backends(database: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("postgres:") and f" {database} " in cmdline:
                found.append(int(entry))
    return found


class CpuMeter:
    """CPU used by named groups of processes between ``start`` and ``stop``, in % of one core."""

    def __init__(self, discover):
        self.discover = discover  # () -> {group name: [pid, ...]}, called at start and at stop

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.before = {name: {pid: cpu_ticks(pid) for pid in pids} for name, pids in self.discover().items()}
        self.machine0 = machine_ticks()

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        used = {}
        # A process that appeared meanwhile (a new database connection) counts from zero.
        for name, pids in self.discover().items():
            ticks = sum(max(0, cpu_ticks(pid) - self.before[name].get(pid, 0)) for pid in pids)
            used[name] = round(100 * ticks / CLK_TCK / elapsed, 1)
        busy0, total0 = self.machine0
        busy1, total1 = machine_ticks()
        used["machine (of 200%)"] = round(200 * (busy1 - busy0) / max(1, total1 - total0), 1)
        return used


class Tabula:
    """The local production stack, with a writer and a reader account and a fresh workbook per scenario."""

    kind = "tabula"

    def __init__(self):
        self.stack = None

    def start(self) -> None:
        from stack.local import LocalStack

        self.stack = LocalStack()
        print(f"starting the local stack in {self.stack.dir} ...", flush=True)
        started = time.monotonic()
        self.stack.start()
        self.writer = self.stack.session("bench-writer", "bench-writer-password-1")
        self.reader = self.stack.session("bench-reader", "bench-reader-password-1")
        print(f"stack up in {time.monotonic() - started:.1f} s: {self.stack.url}", flush=True)

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    @property
    def cafile(self) -> str:
        return str(self.stack.cert)

    def prepare(self, scenario: Scenario) -> dict:
        status, snapshot = self.writer.request("POST", "/api/workbooks/", {"name": f"fan-out {scenario.name}", "rows": 100, "cols": 26})
        assert status == 201, snapshot
        status, body = self.writer.request("PUT", f"/api/workbooks/{snapshot['id']}/members/bench-reader", {"role": "viewer"})
        assert status in (200, 201), body
        return snapshot

    def writable_cells(self, snapshot: dict) -> list[tuple]:
        """The cells the writers pick from, (row id, column id): every cell of the first sheet."""
        sheet = snapshot["sheets"][0]
        return [(row["id"], col["id"]) for row in sheet["rows"] for col in sheet["columns"]]

    def change_log(self, workbook_id: int, since: int) -> dict:
        """The workbook's change log after ``since`` as ``{"rev", "changes": [{"op", "rev"}]}``, read from
        the database: the API's changes answer stops at 5,000 changes or 8 MiB (410: fetch a snapshot),
        and a scenario logs more."""
        import psycopg

        with psycopg.connect(self.stack.database_url) as conn:
            (rev,) = conn.execute("SELECT rev FROM workbooks_workbook WHERE id = %s", [workbook_id]).fetchone()
            rows = conn.execute(
                "SELECT op, rev FROM workbooks_change WHERE workbook_id = %s AND rev > %s ORDER BY rev", [workbook_id, since]
            ).fetchall()
        return {"rev": rev, "changes": [{"op": op, "rev": r} for op, r in rows]}

    def groups(self) -> dict[str, list[int]]:
        stack = self.stack
        groups = {f"daphne-{n}": [stack.daphne_pid(n)] for n in range(len(stack.daphne_ports))}
        groups["nginx"] = children_of(stack.nginx.proc.pid)
        groups["redis"] = [stack.redis.proc.pid]
        groups["postgres"] = postgres_backends(stack.postgres.name)
        return groups

    def counters(self) -> dict[str, int]:
        """Redis commands and PostgreSQL transactions so far: their growth over a run, per operation,
        shows how much work one edit costs each of them."""
        import psycopg
        import redis

        found = {}
        client = redis.Redis.from_url(self.stack.redis_url)
        try:
            for command, stats in client.info("commandstats").items():
                found[f"redis {command.removeprefix('cmdstat_')}"] = stats["calls"]
        finally:
            client.close()
        with psycopg.connect(self.stack.database_url) as conn:
            row = conn.execute(
                "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = %s",
                [self.stack.postgres.name],
            ).fetchone()
            tables = conn.execute(
                "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname LIKE 'workbook%%'"
            ).fetchall()
        for name, value in zip(("commits", "rollbacks", "rows returned", "rows fetched", "rows inserted", "rows updated"), row, strict=True):
            found[f"postgres {name}"] = value
        for table, seq_scans, seq_rows, index_scans in tables:
            found[f"postgres {table} seq scans"] = seq_scans
            found[f"postgres {table} seq rows read"] = seq_rows
            found[f"postgres {table} index scans"] = index_scans
        return found

    def profile_targets(self) -> dict[str, int]:
        return {f"daphne-{n}": self.stack.daphne_pid(n) for n in range(len(self.stack.daphne_ports))}


class FloorTarget:
    kind = "floor"

    def __init__(self, tls_cert: tuple[str, str] | None):
        self.tls = tls_cert
        self.floor: Floor | None = None

    def start_for(self) -> Floor:
        cert, key = self.tls or (None, None)
        self.floor = Floor(cert=cert, key=key).start()
        return self.floor

    def stop(self) -> None:
        if self.floor is not None:
            self.floor.stop()
            self.floor = None


def percentile(values: list[int], q: float) -> float:
    """``values`` sorted; nearest-rank percentile."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


def distribution(values, unit: int = MS) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50) / unit, 3),
        "p90": round(percentile(ordered, 90) / unit, 3),
        "p99": round(percentile(ordered, 99) / unit, 3),
        "p999": round(percentile(ordered, 99.9) / unit, 3),
        "max": round(ordered[-1] / unit, 3),
    }


def windows(latency: array, sent_at: array, t0: int, seconds: float, width: float = 5.0) -> list[dict]:
    """p50 and p99 latency of the operations sent in each ``width``-second window: a growing backlog shows here."""
    count = max(1, math.ceil(seconds / width))
    buckets: list[list[int]] = [[] for _ in range(count)]
    for lat, sent in zip(latency, sent_at, strict=True):
        buckets[min(count - 1, max(0, int((sent - t0) / 1e9 / width)))].append(lat)
    out = []
    for i, bucket in enumerate(buckets):
        bucket.sort()
        out.append({"from_s": i * width, "p50": round(percentile(bucket, 50) / MS, 2), "p99": round(percentile(bucket, 99) / MS, 2)})
    return out


class Pipes:
    """The orchestrator's side of the client processes."""

    def __init__(self, jobs: list[Job]):
        context = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for job in jobs:
            parent, child = context.Pipe()
            proc = context.Process(target=worker_main, args=(child, job), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def send(self, message) -> None:
        for conn in self.conns:
            conn.send(message)

    def gather(self, expected: str, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        answers = []
        for conn, proc in zip(self.conns, self.procs, strict=True):
            while not conn.poll(0.2):
                if not proc.is_alive():
                    raise RuntimeError(f"a client process died (exit code {proc.exitcode}) while waiting for {expected!r}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {expected!r} from a client process after {timeout:.0f} s")
            kind, payload = conn.recv()
            if kind != expected:
                raise RuntimeError(f"a client process answered {kind!r} instead of {expected!r}: {payload}")
            answers.append(payload)
        return answers

    def close(self) -> None:
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()


def run_load(scenario: Scenario, target, args, *, procs: int) -> dict:
    """Runs one scenario against one target; returns its measurements."""
    tag = secrets.token_hex(3)
    floor = None
    if target.kind == "tabula":
        snapshot = target.prepare(scenario)
        stack = target.stack
        url, origin, base_url = f"{stack.ws_url}/ws/workbooks/{snapshot['id']}/", stack.url, stack.url
        cafile = target.cafile
        cookies = [target.writer.cookie_header() if n < scenario.writers else target.reader.cookie_header() for n in range(scenario.clients)]
        cells = target.writable_cells(snapshot)
        groups = target.groups
        profile = target.profile_targets()
    else:
        floor = target.start_for()
        snapshot = None
        url, origin, base_url = f"{floor.url}/ws/workbooks/fanout-{scenario.name}-{tag}/", None, None
        cafile = target.tls[0] if target.tls else None
        cookies = [""] * scenario.clients
        cells = [(r, c) for r in range(1, 101) for c in range(1, 27)]
        groups = lambda: {"floor": [floor.proc.pid]}  # noqa: E731
        profile = {"floor": floor.proc.pid}
    try:
        jobs = []
        for p in range(procs):
            numbers = range(p, scenario.clients, procs)  # writers (the first numbers) spread over the processes
            jobs.append(
                Job(
                    target=target.kind,
                    url=url,
                    origin=origin,
                    cafile=cafile,
                    base_url=base_url,
                    clients=[(n, n < scenario.writers, cookies[n]) for n in numbers],
                    rate=scenario.rate,
                    ops_per_writer=scenario.ops_per_writer,
                    tag=tag,
                    cells=cells,
                    undo_every=scenario.undo_every,
                    numbers=scenario.numbers,
                    snapshot=snapshot,
                    settle_seconds=1.0,
                    drain_idle=args.drain_idle,
                    drain_cap=args.drain_cap,
                )
            )
        pipes = Pipes(jobs)
        try:
            connected = pipes.gather("connected", timeout=300)
            pipes.send(("settle",))
            pipes.gather("settled", timeout=300)
            meter = CpuMeter(lambda: {**groups(), "clients": [p.pid for p in pipes.procs]})
            counters = getattr(target, "counters", dict)
            counted = counters()
            meter.start()
            profilers = start_profilers(profile, scenario, target.kind, args) if args.py_spy else {}
            # The clock starts after the meters: reading the stack's processes takes a while, and
            # writers starting late would send a burst that no real writer sends.
            t0 = time.monotonic_ns() + 300 * MS
            pipes.send(("start", t0))
            sent_parts = pipes.gather("sent", timeout=scenario.seconds + 120)
            sent = {k: v for part in sent_parts for k, v in part.items()}
            pipes.send(("expect", sent))
            drained = pipes.gather("drained", timeout=args.drain_cap + 60)
            cpu = meter.stop()
            counted = {name: value - counted.get(name, 0) for name, value in counters().items() if value != counted.get(name, 0)}
            final = None
            if target.kind == "tabula":
                final = target.writer.request("GET", f"/api/workbooks/{snapshot['id']}/")[1]
            pipes.send(("final", final))
            results = pipes.gather("result", timeout=300)
        finally:
            pipes.close()
        profiles = {}
        for name, (proc, out) in profilers.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            if out.exists():
                profiles[name] = profile_summary(out)
        changes = None
        if target.kind == "tabula":
            changes = target.change_log(snapshot["id"], snapshot["rev"])
        summary = summarize(scenario, target.kind, t0, sent, connected, drained, results, cpu, final, changes)
        if profiles:
            summary["profiles"] = profiles
        if counted:
            ops = max(1, summary["acked"])
            summary["per_operation"] = {name: round(value / ops, 2) for name, value in sorted(counted.items())}
        return summary
    finally:
        if floor is not None:
            target.stop()


def find_py_spy() -> str | None:
    found = shutil.which("py-spy") or Path(sys.executable).parent / "py-spy"
    return str(found) if os.access(found, os.X_OK) else None


def start_profilers(targets: dict[str, int], scenario: Scenario, kind: str, args) -> dict[str, tuple[subprocess.Popen, Path]]:
    """py-spy record on each server process for the sending window (collapsed stacks in bench/results/)."""
    py_spy = find_py_spy()
    procs = {}
    for name, pid in targets.items():
        out = RESULTS / f"profile-{args.stamp}-{scenario.name}-{kind}-{name}.txt"
        command = [py_spy, "record", "--pid", str(pid), "--duration", str(math.ceil(scenario.seconds)), "--rate", "100"]
        command += ["--nonblocking", "--format", "raw", "--output", str(out)]
        procs[name] = (subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
    return procs


# Where a daphne process spends its samples: the share of samples whose stack passes through each of these.
PROFILE_MARKERS = {
    "commit_operation: ORM + SQL in the database thread": "commit_operation (workbooks/services/operations.py",
    "close_old_connections hop before every dispatched message (channels AsyncConsumer.dispatch)": "aclose_old_connections (channels/db.py",
    "close_old_connections in the thread (django)": "close_old_connections (django/db/__init__.py",
    "WorkbookConsumer.workbook_change: one socket's delivery of a change": "WorkbookConsumer.workbook_change (",
    "WorkbookConsumer.receive: parse, rate limit, apply, broadcast": "WorkbookConsumer.receive (",
    "WorkbookConsumer.fill_gap: reading missed changes from the log": "WorkbookConsumer.fill_gap (",
    "channel layer receive (channels_redis)": "RedisChannelLayer.receive (",
    "channel layer group_send (channels_redis)": "RedisChannelLayer.group_send (",
    "autobahn framing (sendMessage)": "sendMessage (autobahn",
    "twisted socket writes (one send() per message per socket)": "Connection.writeSomeData (twisted",
    "psycopg (anywhere)": "(psycopg/",
    "redis-py (anywhere)": "(redis/",
    "the event loop waiting in epoll": "EpollSelector.select (",
}


def profile_summary(path: Path) -> dict:
    """Reads py-spy's collapsed stacks: samples, the share of each marker above, and self time by package."""
    total = 0
    marked: Counter = Counter()
    packages: Counter = Counter()
    threads: Counter = Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            for label, marker in PROFILE_MARKERS.items():
                if marker in stack:
                    marked[label] += n
            frames = stack.split(";")
            threads["event loop" if frames[0].startswith("<module>") else "other threads"] += n
            leaf = frames[-1]
            source = leaf[leaf.rfind("(") + 1 :].split(":")[0]
            source = source.split("site-packages/")[-1]
            packages[source.split("/")[0] if "/" in source else source] += n
    share = lambda n: round(100 * n / max(1, total), 1)  # noqa: E731
    return {
        "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "samples": total,
        "threads_pct": {k: share(v) for k, v in threads.most_common()},
        "stacks_through_pct": {label: share(marked[label]) for label in PROFILE_MARKERS if marked[label]},
        "self_by_package_pct": {k: share(v) for k, v in packages.most_common(10)},
    }


def summarize(scenario, kind, t0, sent, connected, drained, results, cpu, final, changes) -> dict:
    latency = array("q")
    sent_at = array("q")
    ack_latency, lateness, loop_lag = array("q"), array("q"), array("q")
    undo_latency, edit_latency = array("q"), array("q")
    totals: Counter = Counter()
    errors: Counter = Counter()
    closed: Counter = Counter()
    acked = []
    for r in results:
        latency.extend(r["latency"])
        sent_at.extend(r["sent_at"])
        ack_latency.extend(r["ack_latency"])
        undo_latency.extend(r["undo_latency"])
        edit_latency.extend(r["edit_latency"])
        lateness.extend(r["lateness"])
        loop_lag.extend(r["loop_lag"])
        for key in (
            "clients",
            "expected",
            "delivered",
            "incomplete_clients",
            "duplicates",
            "stale",
            "order_errors",
            "syncs",
            "reloads",
            "presence",
            "refused",
        ):
            totals[key] += r[key]
        errors.update(r["errors"])
        closed.update(r["closed"])
        acked.extend(r["acked"])
    total_sent = sum(sent.values())
    first_send = min(r["first_send"] for r in results if r["first_send"]) if total_sent else t0
    last_send = max(r["last_send"] for r in results)
    last_ack = max(r["last_ack"] for r in results)
    send_span = max(1e-9, (last_send - first_send) / 1e9)
    summary = {
        "target": kind,
        "scenario": scenario.name,
        "clients": scenario.clients,
        "writers": scenario.writers,
        "rate_per_writer": scenario.rate,
        "seconds": scenario.seconds,
        "client_processes": len(results),
        "connect_seconds": round(max(c["seconds"] for c in connected), 2),
        "upstreams": dict(sum((Counter(c["upstreams"]) for c in connected), Counter())),
        "scheduled": scenario.ops_per_writer * scenario.writers,
        "sent": total_sent,
        "send_rate": round((total_sent - scenario.writers) / send_span, 1) if total_sent > scenario.writers else 0.0,
        "acked": len(acked),
        "ack_rate": round(len(acked) / max(1e-9, (last_ack - t0) / 1e9), 1) if last_ack else 0.0,
        "sender_late_ms": distribution(lateness),
        "expected": totals["expected"],
        "delivered": totals["delivered"],
        "delivered_pct": round(100 * totals["delivered"] / totals["expected"], 3) if totals["expected"] else 100.0,
        "incomplete_clients": totals["incomplete_clients"],
        "duplicates": totals["duplicates"],
        "latency_ms": distribution(latency),
        "latency_by_window": windows(latency, sent_at, t0, scenario.seconds),
        "ack_latency_ms": distribution(ack_latency),
        "undo_latency_ms": distribution(undo_latency),
        "edit_latency_ms": distribution(edit_latency),
        "drained": all(d["complete"] for d in drained),
        "drain_seconds": round(max(d["seconds"] for d in drained), 2),
        "errors": dict(errors),
        "closed": dict(closed),
        "client_loop_lag_ms": distribution(loop_lag),
        "client_cpu_pct": [round(100 * r["cpu_seconds"] / max(1e-9, r["wall_seconds"]), 1) for r in results],
        "cpu_pct": cpu,
    }
    if kind == "tabula":
        summary.update(
            order_errors=totals["order_errors"],
            stale=totals["stale"],
            syncs=totals["syncs"],
            reloads=totals["reloads"],
            presence_messages=totals["presence"],
            refused=totals["refused"],
            **durability(acked, changes, final),
            converged=sum(r["converged"] for r in results),
            converged_of=totals["clients"],
            final_rev=final["rev"],
            client_revs=sorted({rev for r in results for rev in r["grid_revs"]}),
        )
    else:
        summary["order_errors"] = totals["order_errors"]
    return summary


def durability(acked: list[tuple[str, int, int]], changes: dict, final: dict) -> dict:
    """Every acknowledged operation is in the change log at the revision its acknowledgement said."""
    logged = {c["op"]: c["rev"] for c in changes["changes"]}
    # An op id ends with its send time, which the acknowledgements do not keep: index the log without it.
    by_prefix = {op.rsplit(".", 1)[0]: rev for op, rev in logged.items()}
    missing = [f"{prefix}.{seq}" for prefix, seq, rev in acked if by_prefix.get(f"{prefix}.{seq}") != rev]
    revs = [c["rev"] for c in changes["changes"]]
    return {
        "durable": not missing,
        "not_in_log": len(missing),
        "logged": len(logged),
        "log_contiguous": revs == list(range(revs[0], revs[0] + len(revs))) if revs else True,
        "log_rev": changes["rev"],
        "snapshot_rev": final["rev"],
    }


# ====================================================================== the report


def verdict(scenario: Scenario, tabula: dict | None, floor: dict | None) -> dict:
    out = {}
    if tabula is None:
        return out
    p99 = tabula["latency_ms"].get("p99", math.nan)
    checks = {
        "delivered 100%": tabula["delivered"] == tabula["expected"] and tabula["expected"] > 0,
        "rev order": tabula["order_errors"] == 0,
        "durable": tabula["durable"],
        "converged": tabula["drained"] and tabula["converged"] == tabula["converged_of"],
        "no errors": not tabula["errors"] and not tabula["closed"],
    }
    if scenario.p99_ms is not None:
        checks[f"p99 < {scenario.p99_ms:g} ms"] = p99 < scenario.p99_ms
    if scenario.undo_ratio is not None:
        undo, edit = tabula["undo_latency_ms"].get("p99", math.nan), tabula["edit_latency_ms"].get("p99", math.nan)
        out["undo_ratio"] = round(undo / edit, 2) if edit else math.inf
        checks[f"undo p99 <= {scenario.undo_ratio:g}x set p99"] = out["undo_ratio"] <= scenario.undo_ratio
    if floor is not None and floor["latency_ms"].get("count"):
        ratio = p99 / floor["latency_ms"]["p99"] if floor["latency_ms"]["p99"] else math.inf
        out["p99_ratio"] = round(ratio, 2)
        if scenario.floor_ratio is not None:
            checks[f"p99 <= {scenario.floor_ratio:g}x floor"] = ratio <= scenario.floor_ratio
    out["checks"] = checks
    out["meets_targets"] = all(checks.values())
    return out


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_scenario(entry: dict) -> None:
    scenario = Scenario(**entry["scenario"])
    print()
    print(f"== scenario {scenario.name}: {scenario.describe()}")
    header = f"{'target':<7} {'sent':>6} {'rate/s':>7} {'late p99/max ms':>16} {'delivered':>17} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}"
    header += f" {'ack p99':>8} {'order':>5} {'durable':>8} {'converged':>9} {'client CPU':>10}"
    print(header)
    for kind in ("floor", "tabula"):
        r = entry.get(kind)
        if r is None:
            continue
        lat, late = r["latency_ms"], r["sender_late_ms"]
        delivered = f"{r['delivered']}/{r['expected']}"
        durable = ("yes" if r["durable"] else f"NO ({r['not_in_log']})") if kind == "tabula" else "-"
        converged = "-" if kind != "tabula" else f"{r['converged']}/{r['converged_of']}" if r["drained"] else "n/a"
        order = "ok" if r["order_errors"] == 0 else str(r["order_errors"])
        cpu = "+".join(f"{c:.0f}" for c in r["client_cpu_pct"]) + "%"
        print(
            f"{kind:<7} {r['sent']:>6} {r['send_rate']:>7.1f} {fmt(late.get('p99')):>7}/{fmt(late.get('max')):<8} {delivered:>17} "
            f"{fmt(lat.get('p50'), 2):>8} {fmt(lat.get('p99'), 2):>8} {fmt(lat.get('max'), 1):>9} {fmt(r['ack_latency_ms'].get('p99'), 1):>8} "
            f"{order:>5} {durable:>8} {converged:>9} {cpu:>10}"
        )
    for kind in ("floor", "tabula"):
        r = entry.get(kind)
        if r is None:
            continue
        cpu = ", ".join(f"{name} {pct:.0f}%" for name, pct in r["cpu_pct"].items())
        print(f"  {kind} CPU (% of one core): {cpu}")
        notes = []
        if r["errors"]:
            notes.append(f"errors {r['errors']}")
        if r["closed"]:
            notes.append(f"sockets closed {r['closed']}")
        if not r["drained"]:
            notes.append(f"NOT drained: deliveries still missing {r['drain_seconds']} s after the last send (convergence not judged)")
        elif r["drain_seconds"] > 1:
            notes.append(f"backlog drained {r['drain_seconds']} s after the last send")
        if r["sender_late_ms"].get("max", 0) > 50:
            notes.append(f"senders fell behind schedule (max {r['sender_late_ms']['max']:.0f} ms late)")
        if r["client_loop_lag_ms"].get("p99", 0) > 10:
            notes.append(f"client event loop lag p99 {r['client_loop_lag_ms']['p99']:.0f} ms: the client may be part of the latency")
        if kind == "tabula":
            if r["syncs"] or r["reloads"]:
                notes.append(f"syncs {r['syncs']}, reloads {r['reloads']}")
            notes.append(f"rev {r['final_rev']}, logged {r['logged']}, acked {r['acked']}, ack rate {r['ack_rate']}/s")
            notes.append("p99 by 5-s window: " + " ".join(fmt(w["p99"], 0) for w in r["latency_by_window"]))
            if r["undo_latency_ms"].get("count"):
                notes.append(f"undo p99 {fmt(r['undo_latency_ms']['p99'], 2)} ms against the other edits' {fmt(r['edit_latency_ms']['p99'], 2)} ms")
            if r.get("per_operation"):
                work = sorted(r["per_operation"].items(), key=lambda item: -item[1])
                notes.append("per acknowledged op: " + ", ".join(f"{name} {value:g}" for name, value in work if value >= 0.05))
        if notes:
            print(f"  {kind}: " + "; ".join(notes))
        for name, profile in (r.get("profiles") or {}).items():
            through = ", ".join(f"{label.split(':')[0]} {pct:g}%" for label, pct in profile["stacks_through_pct"].items())
            print(f"  profile {name} ({profile['samples']} samples; {profile['threads_pct']}): {through}")
    v = entry.get("verdict") or {}
    if v:
        checks = ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in v["checks"].items())
        ratio = f"Tabula p99 / floor p99 = {v['p99_ratio']:.2f}x; " if "p99_ratio" in v else ""
        print(f"  {ratio}targets: {checks} -> {'MET' if v['meets_targets'] else 'NOT MET'}")


def print_summary(report: dict) -> None:
    print()
    print("== summary (latency = send to arrival at every other client)")
    header = f"{'scenario':<48} {'floor p99':>9} {'tabula p50':>10} {'tabula p99':>10} {'ratio':>6}"
    print(header + f" {'delivered':>9} {'durable':>7} {'converged':>9} {'targets':>8}")
    for entry in report["scenarios"]:
        scenario = Scenario(**entry["scenario"])
        floor, tabula, v = entry.get("floor"), entry.get("tabula"), entry.get("verdict") or {}
        line = f"{scenario.name + ': ' + scenario.describe():<48} {fmt(floor and floor['latency_ms'].get('p99'), 2):>9} "
        if tabula:
            converged = f"{tabula['converged']}/{tabula['converged_of']}" if tabula["drained"] else "n/a"
            line += (
                f"{fmt(tabula['latency_ms'].get('p50'), 2):>10} {fmt(tabula['latency_ms'].get('p99'), 2):>10} {fmt(v.get('p99_ratio'), 1):>6} "
                f"{tabula['delivered_pct']:>8.2f}% {'yes' if tabula['durable'] else 'NO':>7} "
                f"{converged:>9} {'MET' if v.get('meets_targets') else 'NOT MET':>8}"
            )
        print(line)


def machine() -> dict:
    def run(*command):
        with contextlib.suppress(Exception):
            return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
        return None

    return {
        "nproc": os.cpu_count(),
        "cpu": next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), None
        ),
        "memory": run("free", "-h"),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }


# ====================================================================== main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fan-out benchmark: Tabula's local production stack against the floor, under the same load.")
    parser.add_argument("--clients", type=int, default=10, help="sockets on the workbook (default 10)")
    parser.add_argument("--writers", type=int, default=1, help="how many of them write (default 1)")
    parser.add_argument("--rate", type=float, default=50, help="operations per second per writer (default 50)")
    parser.add_argument("--seconds", type=float, default=None, help="sending time per scenario (default 10; 30 in the suite)")
    parser.add_argument("--suite", action="store_true", help="the issues' scenarios (a, b, c, and u: a with undos), one report")
    parser.add_argument("--scenarios", default="abcu", help="with --suite: which of a, b, c and u (a with undos) (default abcu)")
    parser.add_argument("--only", choices=("tabula", "floor"), help="run one target only")
    parser.add_argument("--procs", type=int, default=1, help="client processes to split the clients over (default 1)")
    parser.add_argument("--floor-tls", action="store_true", help="serve the floor over TLS too (with a self-signed certificate)")
    parser.add_argument("--drain-idle", type=float, default=30, help="stop waiting for missing deliveries after this many quiet seconds")
    parser.add_argument("--drain-cap", type=float, default=120, help="... or after this many seconds in all")
    parser.add_argument("--py-spy", action="store_true", help="record py-spy profiles of the server processes (needs py-spy)")
    parser.add_argument("--output", type=Path, help="the JSON result file (default bench/results/fanout-<time>.json)")
    args = parser.parse_args(argv)
    args.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    if args.suite:
        scenarios = [s for s in SUITE if s.name in args.scenarios]
        if args.seconds is not None:
            scenarios = [replace(s, seconds=args.seconds) for s in scenarios]
    else:
        if not 1 <= args.writers <= args.clients:
            parser.error("--writers must be between 1 and --clients")
        scenarios = [Scenario("custom", args.clients, args.writers, args.rate, args.seconds or 10)]
    if args.py_spy and find_py_spy() is None:
        parser.error("--py-spy needs py-spy (.venv/bin/pip install py-spy)")

    # SIGTERM ends the run like Ctrl-C, so the stack and the floor are always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = args.output or RESULTS / f"fanout-{args.stamp}.json"
    report = {"benchmark": "fanout", "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine()}
    report["command"] = "python -m bench.fanout " + " ".join(argv if argv is not None else sys.argv[1:])
    report["scenarios"] = []

    tabula = None if args.only == "floor" else Tabula()
    scratch = Path(tempfile.mkdtemp(prefix="tabula-floor-"))
    try:
        tls = None
        if args.floor_tls:
            from stack.local import make_certificate

            cert, key = make_certificate(scratch)
            tls = (str(cert), str(key))
        floor = None if args.only == "tabula" else FloorTarget(tls)
        for scenario in scenarios:
            entry = {"scenario": asdict(scenario), "client_processes": args.procs}
            for target in (floor, tabula):
                if target is None:
                    continue
                # A fresh stack for every scenario: work an overloaded server still had queued when
                # the last one ended must not slow the next one down.
                if target is tabula:
                    tabula.start()
                try:
                    print(f"scenario {scenario.name} ({scenario.describe()}) against {target.kind}, {args.procs} client process(es) ...", flush=True)
                    entry[target.kind] = run_load(scenario, target, args, procs=args.procs)
                finally:
                    if target is tabula:
                        tabula.stop()
            entry["verdict"] = verdict(scenario, entry.get("tabula"), entry.get("floor"))
            report["scenarios"].append(entry)
            print_scenario(entry)
            output.write_text(json.dumps(report, indent=1, default=str))
    finally:
        if tabula is not None:
            tabula.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    report["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    output.write_text(json.dumps(report, indent=1, default=str))
    print_summary(report)
    print(f"\nresults: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
