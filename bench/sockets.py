"""Many sockets: how many idle sockets one daphne process holds, their memory, and one broadcast's reach.

    python -m bench.sockets [--sockets 5000] [--batch 250] [--clients 2] [--workbooks 1]

It starts the local production stack (stack/local.py: PostgreSQL, a private Redis, gunicorn and
two daphne processes under supervisord, nginx over TLS), logs one user in, creates the workbook(s), and
then opens sockets in batches straight to ONE daphne process (its loopback port, as nginx would, with
the session cookie and an allowed Origin) from ``--clients`` client processes running asyncio. A
socket counts as held once its ``hello`` arrived. Between batches it reads the daphne process's RSS
(/proc/PID/status) and CPU time; the ramp stops at ``--sockets``, or when a batch fails or takes too
long, or when the time budget runs out, so the run stays bounded and reports how far it got.

Then it waits for the sockets to go quiet (every join announces itself to the whole workbook, so joining
is not idle) and posts one ``set`` over HTTP through nginx (the API, gunicorn, Redis): the time from
posting it to each socket receiving that change gives p50, p99 and the last socket's time.
``--workbooks K`` spreads the sockets over K workbooks (one post per workbook, each socket timed from its
workbook's post): the same sockets without one workbook's presence traffic, to tell the two costs apart.

Memory per socket = (RSS after the ramp and the quiet wait - RSS with one socket open) / (sockets - 1).
Results: a table on stdout and JSON in bench/results/sockets-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import resource
import secrets
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SOCKETS = 5000
TARGET_BROADCAST_S = 1.0
TARGET_KIB_PER_SOCKET = 60
PASSWORD = "bench-sockets-password"


# ---------------------------------------------------------------- the client processes


class ClientState:
    def __init__(self):
        self.sockets: list = []  # [workbook index, websocket, open?]
        self.messages = 0
        self.bytes = 0
        self.closed: dict[str, int] = {}
        self.markers: dict[str, int] = {}  # marker -> workbook index
        self.arrivals: list[tuple[int, float]] = []  # (workbook index, monotonic time)
        self.expected = 0
        self.all_arrived = asyncio.Event()
        self.lag_max = 0.0


PING_EVERY = 5.0  # seconds: an idle page's heartbeat (static/tabula/js/socket.js)


async def _reader(state: ClientState, entry: list) -> None:
    from websockets.exceptions import ConnectionClosed

    workbook, ws = entry[0], entry[1]
    try:
        async for message in ws:
            state.messages += 1
            state.bytes += len(message)
            if state.markers and message.startswith('{"type":"change"'):
                for marker, marker_workbook in state.markers.items():
                    if marker_workbook == workbook and marker in message:
                        state.arrivals.append((workbook, time.monotonic()))
                        if len(state.arrivals) >= state.expected:
                            state.all_arrived.set()
                        break
    except ConnectionClosed:
        pass
    finally:
        entry[2] = False
        code = str(ws.close_code) if ws.close_code is not None else "none"
        state.closed[code] = state.closed.get(code, 0) + 1


async def _open_one(state: ClientState, url: str, headers: dict, workbook: int, timeout: float) -> str | None:
    """Opens one socket and waits for its hello; None when held, else the error."""
    from websockets.asyncio.client import connect

    try:
        ws = await connect(
            url,
            additional_headers=headers,
            origin=headers.pop("Origin", None) or None,
            ping_interval=None,  # daphne pings every 20 s; the client answers
            max_size=None,
            max_queue=None,
            open_timeout=timeout,
            close_timeout=2,
        )
    except Exception as exc:  # refused handshake, reset, timeout: counted and reported
        return f"{type(exc).__name__}: {exc}"[:200]
    try:
        first = await asyncio.wait_for(ws.recv(), timeout)
    except Exception as exc:
        with suppress(Exception):
            await ws.close()
        return f"no hello: {type(exc).__name__}: {exc}"[:200]
    if not first.startswith('{"type":"hello"'):
        await ws.close()
        return f"first message not hello: {first[:80]}"
    entry = [workbook, ws, True]
    state.sockets.append(entry)
    asyncio.get_running_loop().create_task(_reader(state, entry))
    asyncio.get_running_loop().create_task(_heartbeat(ws))
    return None


async def _heartbeat(ws) -> None:
    """Pings as an idle page does (every 5 s without a message; the server closes a socket silent for 30 s)."""
    from websockets.exceptions import ConnectionClosed

    await asyncio.sleep(random.uniform(0, PING_EVERY))  # spread over the interval, as tabs opened at different times are
    with suppress(ConnectionClosed):
        while True:
            await ws.send('{"type":"ping"}')
            await asyncio.sleep(PING_EVERY)


async def _lag_monitor(state: ClientState) -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.05)
        state.lag_max = max(state.lag_max, time.monotonic() - before - 0.05)


async def _client_main(conn, url_for_workbook: list[str], headers: dict, concurrency: int, timeout: float) -> None:
    state = ClientState()
    loop = asyncio.get_running_loop()
    loop.create_task(_lag_monitor(state))
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            workbooks = arg  # the workbook index of each socket to open
            semaphore = asyncio.Semaphore(concurrency)

            async def one(workbook, semaphore=semaphore):
                async with semaphore:
                    return await _open_one(state, url_for_workbook[workbook], dict(headers), workbook, timeout)

            started = time.monotonic()
            errors = await asyncio.gather(*(one(s) for s in workbooks))
            failed = [e for e in errors if e]
            conn.send({"opened": len(workbooks) - len(failed), "failed": len(failed), "errors": failed[:5], "seconds": time.monotonic() - started})
        elif command == "stats":
            conn.send(
                {
                    "open": sum(1 for e in state.sockets if e[2]),
                    "messages": state.messages,
                    "bytes": state.bytes,
                    "closed": dict(state.closed),
                    "lag_max": state.lag_max,
                }
            )
        elif command == "arm":
            state.markers = dict(arg)
            state.arrivals = []
            state.expected = sum(1 for e in state.sockets if e[2] and e[0] in set(state.markers.values()))
            state.all_arrived = asyncio.Event()
            state.lag_max = 0.0
            conn.send("armed")
        elif command == "collect":
            if len(state.arrivals) < state.expected:
                with suppress(TimeoutError):
                    await asyncio.wait_for(state.all_arrived.wait(), arg)
            conn.send({"arrivals": list(state.arrivals), "expected": state.expected, "lag_max": state.lag_max})
            state.markers = {}
        elif command == "close":
            await asyncio.gather(*(e[1].close() for e in state.sockets if e[2]), return_exceptions=True)
            conn.send("closed")
            return


def client_process(conn, url_for_workbook, headers, concurrency, timeout) -> None:
    raise_fd_limit()
    asyncio.run(_client_main(conn, url_for_workbook, headers, concurrency, timeout))


# ---------------------------------------------------------------- measuring


def raise_fd_limit() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_limit_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return " ".join(line.split()[3:5])
    return "?"


def redis_used_memory(port: int) -> int | None:
    with suppress(Exception):
        out = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":")[1])
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Clients:
    """The client processes and the commands the bench sends them."""

    def __init__(self, count: int, url_for_workbook: list[str], headers: dict, concurrency: int, timeout: float):
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(child, url_for_workbook, headers, concurrency, timeout), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def ask(self, command: str, args: list, timeout: float) -> list:
        for pipe, arg in zip(self.pipes, args, strict=True):
            pipe.send((command, arg))
        answers = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a client process did not answer {command!r} within {timeout:.0f}s")
            answers.append(pipe.recv())
        return answers

    def all(self, command: str, arg=None, timeout: float = 60) -> list:
        return self.ask(command, [arg] * len(self.pipes), timeout)

    def stats(self) -> dict:
        answers = self.all("stats", timeout=60)
        closed: dict[str, int] = {}
        for a in answers:
            for code, n in a["closed"].items():
                closed[code] = closed.get(code, 0) + n
        return {
            "open": sum(a["open"] for a in answers),
            "messages": sum(a["messages"] for a in answers),
            "bytes": sum(a["bytes"] for a in answers),
            "closed": closed,
            "lag_max": max(a["lag_max"] for a in answers),
        }

    def stop(self) -> None:
        with suppress(Exception):
            self.all("close", timeout=60)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def wait_quiet(clients: Clients, limit: float, quiet_for: float = 3.0) -> dict:
    """Waits until no client received a message for ``quiet_for`` seconds (at most ``limit`` seconds)."""
    started = time.monotonic()
    last = clients.stats()["messages"]
    quiet_since = time.monotonic()
    while time.monotonic() - started < limit:
        time.sleep(0.5)
        now = clients.stats()["messages"]
        if now != last:
            quiet_since = time.monotonic()
        last = now
        if time.monotonic() - quiet_since >= quiet_for:
            return {"quiet": True, "seconds": round(time.monotonic() - started, 1)}
    return {"quiet": False, "seconds": round(time.monotonic() - started, 1)}


def idle_cpu_percent(pid: int, seconds: float = 10.0) -> float:
    """daphne's CPU use while its sockets are idle (each one checks its workbook now and then)."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return round(100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0), 1)


def broadcast(clients: Clients, session, workbook_ids: list[int], cells: list[tuple[int, int]], number: int, wait: float) -> dict:
    """One `set` per workbook posted through nginx; returns each socket's time from its workbook's post."""
    token = secrets.token_hex(4)
    markers = {f"bcast-{number}-{token}-s{i}": i for i in range(len(workbook_ids))}
    clients.all("arm", list(markers.items()), timeout=30)
    posted = []
    http_seconds = []
    for (marker, index), (row, col) in zip(markers.items(), cells, strict=True):
        op = {"type": "set", "op": marker, "cells": [{"row": row, "col": col, "value": marker}]}
        t0 = time.monotonic()
        status, body = session.request("POST", f"/api/workbooks/{workbook_ids[index]}/ops", op)
        http_seconds.append(time.monotonic() - t0)
        if status != 201:
            raise RuntimeError(f"broadcast post failed: {status} {body}")
        posted.append(t0)
    answers = clients.all("collect", wait, timeout=wait + 60)
    latencies = [arrival - posted[workbook] for a in answers for workbook, arrival in a["arrivals"]]
    expected = sum(a["expected"] for a in answers)
    result = {
        "posts": len(workbook_ids),
        "http_post_s": round(statistics.median(http_seconds), 4),
        "expected": expected,
        "received": len(latencies),
        "client_loop_lag_max_s": round(max(a["lag_max"] for a in answers), 4),
    }
    if latencies:
        result.update(
            p50_s=round(percentile(latencies, 0.5), 4),
            p99_s=round(percentile(latencies, 0.99), 4),
            last_s=round(max(latencies), 4),
            first_s=round(min(latencies), 4),
        )
    return result


# ---------------------------------------------------------------- the run


def run(args) -> dict:
    from stack.local import LocalStack

    limits = raise_fd_limit()  # daphne inherits it through supervisord
    needed = args.sockets // max(1, args.clients) + 200
    if limits[0] < args.sockets + 500 or limits[0] < needed:
        print(f"warning: open files limit {limits[0]} may be too low for {args.sockets} sockets", file=sys.stderr)
    result: dict = {
        "benchmark": "sockets",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.sockets " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "loadavg_at_start": os.getloadavg(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "fd_limit_bench": list(limits),
        "targets": {"sockets": TARGET_SOCKETS, "broadcast_last_s": TARGET_BROADCAST_S, "kib_per_socket": TARGET_KIB_PER_SOCKET},
    }
    stack = LocalStack()
    clients = None
    try:
        print(f"starting the local stack in {stack.dir} ...", flush=True)
        stack.start()
        session = stack.session("bench", PASSWORD)
        workbook_ids, cells = [], []
        for i in range(args.workbooks):
            status, snap = session.request("POST", "/api/workbooks/", {"name": f"sockets {i}", "rows": 10, "cols": 5})
            if status != 201:
                raise RuntimeError(f"creating a workbook failed: {status} {snap}")
            workbook_ids.append(snap["id"])
            cells.append((snap["sheets"][0]["rows"][0]["id"], snap["sheets"][0]["columns"][0]["id"]))
        port = stack.daphne_ports[0]
        pid = stack.daphne_pid(0)
        result["daphne"] = {"port": port, "pid": pid, "fd_limit": fd_limit_of(pid), "flags": "deploy/bin/daphne (as in production)"}
        headers = {"Cookie": session.cookie_header(), "Origin": stack.url}
        urls = [f"ws://127.0.0.1:{port}/ws/workbooks/{sid}/" for sid in workbook_ids]
        clients = Clients(args.clients, urls, headers, args.concurrency, args.open_timeout)

        rss_start = rss_kib(pid)
        # One socket first, so every module a socket needs is loaded before the baseline is read.
        clients.ask("open", [[0]] + [[] for _ in range(args.clients - 1)], timeout=120)
        wait_quiet(clients, 20)
        rss_one = rss_kib(pid)
        redis_one = redis_used_memory(stack.redis.port)
        result["memory_start"] = {"daphne_rss_kib_no_sockets": rss_start, "daphne_rss_kib_one_socket": rss_one, "redis_used_bytes": redis_one}
        print(f"daphne pid {pid} on port {port}: RSS {rss_start} KiB idle, {rss_one} KiB with one socket", flush=True)
        columns = ("batch", "opened", "failed", "open", "closed", "secs", "RSS MiB", "KiB/sock", "CPU s")
        print(" ".join(f"{c:>8}" for c in columns), flush=True)

        batches = []
        held = 1
        next_workbook = 1 % args.workbooks
        run_started = time.monotonic()
        stop_reason = "target reached"
        while held < args.sockets:
            if time.monotonic() - run_started > args.budget:
                stop_reason = f"time budget of {args.budget:.0f}s used"
                break
            size = min(args.batch, args.sockets - held)
            plan = [[] for _ in range(args.clients)]
            for i in range(size):
                plan[i % args.clients].append(next_workbook)
                next_workbook = (next_workbook + 1) % args.workbooks
            cpu0 = cpu_seconds(pid)
            started = time.monotonic()
            try:
                answers = clients.ask("open", plan, timeout=args.batch_timeout)
            except TimeoutError as exc:
                stop_reason = f"batch timed out: {exc}"
                batches.append({"batch": len(batches) + 1, "timed_out": True})
                break
            seconds = time.monotonic() - started
            opened = sum(a["opened"] for a in answers)
            failed = sum(a["failed"] for a in answers)
            errors = [e for a in answers for e in a["errors"]][:5]
            held += opened
            if args.pause > 0:
                wait_quiet(clients, args.pause, quiet_for=1.0)
            stats = clients.stats()
            open_now = stats["open"]
            closed = sum(stats["closed"].values())
            rss = rss_kib(pid)
            per_socket = (rss - rss_one) / max(1, open_now - 1)
            cpu = cpu_seconds(pid) - cpu0
            batches.append(
                {
                    "batch": len(batches) + 1,
                    "opened_total": held,
                    "opened": opened,
                    "failed": failed,
                    "open": open_now,
                    "closed_by_server_total": stats["closed"],
                    "seconds": round(seconds, 2),
                    "rss_kib": rss,
                    "kib_per_open_socket": round(per_socket, 1),
                    "daphne_cpu_s": round(cpu, 2),
                    "errors": errors,
                }
            )
            row = (len(batches), held, failed, open_now, closed, f"{seconds:.1f}", f"{rss / 1024:.1f}", f"{per_socket:.1f}", f"{cpu:.1f}")
            print(" ".join(f"{c:>8}" for c in row), flush=True)
            for e in errors[:2]:
                print(f"      error: {e}", flush=True)
            if failed > size // 2:
                stop_reason = f"more than half of batch {len(batches)} failed"
                break
            if open_now < held // 2:
                stop_reason = f"the server closed {closed} of the {held} sockets opened (codes {stats['closed']})"
                break
            if seconds > args.batch_timeout * 0.8:
                stop_reason = f"batch {len(batches)} took {seconds:.0f}s"
                break
        result["ramp"] = {"batches": batches, "stop_reason": stop_reason, "seconds": round(time.monotonic() - run_started, 1)}

        print(f"ramp ended ({stop_reason}); waiting for the sockets to go quiet ...", flush=True)
        cpu0 = cpu_seconds(pid)
        quiet = wait_quiet(clients, args.settle)
        quiet["daphne_cpu_s"] = round(cpu_seconds(pid) - cpu0, 1)
        idle_cpu = idle_cpu_percent(pid)
        stats = clients.stats()
        rss = rss_kib(pid)
        still_open = stats["open"]
        result["idle"] = {
            **quiet,
            "sockets_open": still_open,
            "sockets_closed_by_code": stats["closed"],
            "messages_received_total": stats["messages"],
            "bytes_received_total": stats["bytes"],
            "daphne_rss_kib": rss,
            "daphne_idle_cpu_percent": idle_cpu,
            "kib_per_socket": round((rss - rss_one) / (still_open - 1), 1) if still_open > 10 else None,
            "redis_used_bytes": redis_used_memory(stack.redis.port),
        }
        print(
            f"idle: {still_open} open, quiet={quiet['quiet']} after {quiet['seconds']}s, RSS {rss / 1024:.1f} MiB, "
            f"{result['idle']['kib_per_socket']} KiB/socket, daphne idle CPU {idle_cpu}%; clients received {stats['messages']} messages "
            f"({stats['bytes'] / 1e6:.1f} MB) while joining",
            flush=True,
        )

        result["broadcasts"] = []
        for number in range(args.broadcasts):
            b = broadcast(clients, session, workbook_ids, cells, number, args.broadcast_wait)
            result["broadcasts"].append(b)
            print(
                f"broadcast {number + 1}: {b['received']}/{b['expected']} sockets, p50 {b.get('p50_s', '-')} s, "
                f"p99 {b.get('p99_s', '-')} s, last {b.get('last_s', '-')} s (HTTP post {b['http_post_s']} s, "
                f"client loop lag max {b['client_loop_lag_max_s']} s)",
                flush=True,
            )
            wait_quiet(clients, 30, quiet_for=1.0)
        result["daphne_log_problems"] = log_problems((stack.logs / "daphne-0.log").read_text(errors="replace"))
        result["summary"] = summary(result)
    finally:
        if clients is not None:
            clients.stop()
        stack.stop()
    return result


def log_problems(text: str) -> dict:
    counts: dict[str, int] = {}
    for line in text.splitlines():
        for word in ("Traceback", "MaxConnectionsError", "ChannelFull", "over capacity", "socket closed", "WSREJECT", "Too many open files"):
            if word in line:
                counts[word] = counts.get(word, 0) + 1
    return counts


def summary(result: dict) -> dict:
    idle = result["idle"]
    broadcasts = [b for b in result["broadcasts"] if "last_s" in b]
    last = statistics.median(b["last_s"] for b in broadcasts) if broadcasts else None
    p50 = statistics.median(b["p50_s"] for b in broadcasts) if broadcasts else None
    all_received = all(b["received"] == b["expected"] for b in result["broadcasts"])
    return {
        "sockets_held": idle["sockets_open"],
        "kib_per_socket": idle["kib_per_socket"],
        "broadcast_p50_s": p50,
        "broadcast_last_s": last,
        "every_socket_received": all_received,
        "meets_target": bool(
            idle["sockets_open"] >= TARGET_SOCKETS
            and idle["kib_per_socket"] is not None
            and idle["kib_per_socket"] < TARGET_KIB_PER_SOCKET
            and last is not None
            and last < TARGET_BROADCAST_S
            and all_received
        ),
    }


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(), "host": platform.node()}


def print_summary(result: dict) -> None:
    s = result["summary"]
    rows = [
        ("idle sockets held by one daphne", f"{s['sockets_held']}", f">= {TARGET_SOCKETS}"),
        ("memory per socket (daphne RSS)", f"{s['kib_per_socket']} KiB", f"< {TARGET_KIB_PER_SOCKET} KiB"),
        ("one broadcast: p50", f"{s['broadcast_p50_s']} s", ""),
        ("one broadcast: last socket", f"{s['broadcast_last_s']} s", f"< {TARGET_BROADCAST_S} s"),
        ("every socket received it", str(s["every_socket_received"]), "yes"),
    ]
    print("\n" + f"{'Many sockets':<36} {'measured':>14}   target")
    for name, value, target in rows:
        print(f"{name:<36} {value:>14}   {target}")
    print(f"ramp stopped: {result['ramp']['stop_reason']}; meets target: {s['meets_target']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=TARGET_SOCKETS, help="sockets to open on one daphne process")
    parser.add_argument("--batch", type=int, default=250, help="sockets opened per batch")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--workbooks", type=int, default=1, help="spread the sockets over this many workbooks")
    parser.add_argument("--concurrency", type=int, default=10, help="handshakes in flight per client process")
    parser.add_argument("--pause", type=float, default=30, help="after each batch, wait up to this long for the sockets to go quiet")
    parser.add_argument("--open-timeout", type=float, default=30, help="seconds for one handshake and its hello")
    parser.add_argument("--batch-timeout", type=float, default=120, help="seconds a batch may take before the ramp stops")
    parser.add_argument("--budget", type=float, default=900, help="seconds for the whole ramp")
    parser.add_argument("--settle", type=float, default=180, help="seconds to wait for the sockets to go quiet")
    parser.add_argument("--broadcasts", type=int, default=3)
    parser.add_argument("--broadcast-wait", type=float, default=30, help="seconds to wait for a broadcast to reach every socket")
    parser.add_argument("--out", type=Path, help="the JSON result file (default bench/results/sockets-<time>.json)")
    args = parser.parse_args(argv)
    if args.sockets < 2 or args.workbooks < 1 or args.clients < 1:
        parser.error("need --sockets >= 2, --workbooks >= 1 and --clients >= 1")
    result = run(args)
    result["loadavg_at_end"] = os.getloadavg()
    print_summary(result)
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"sockets-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
