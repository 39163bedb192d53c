"""The floor: the least a fan-out server can do on this machine, for the benchmarks to compare with.

A bare Python ``websockets`` server, no Django, no Redis, no database: every text message a socket
sends is rebroadcast, unchanged, to every socket connected on the same path, the sender included (as
Tabula answers its sender with the change). Each message is encoded once and written to every socket
without waiting (``websockets.broadcast``), so nothing here is slower than it has to be.

Run it on its own::

    python -m bench.floor --port 8765             # ws://127.0.0.1:8765/any/path/

or from a benchmark with ``Floor(port).start()`` / ``.stop()`` (a child process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def serve_floor(host: str, port: int, *, ssl_context=None, ready: asyncio.Event | None = None) -> None:
    rooms: dict[str, set] = defaultdict(set)

    async def handler(ws) -> None:
        room = rooms[ws.request.path]
        room.add(ws)
        try:
            async for message in ws:
                if isinstance(message, str):
                    broadcast(room, message)
        except ConnectionClosed:
            pass
        finally:
            room.discard(ws)

    # No compression (Tabula's daphne does not negotiate it either), no size limit beyond Tabula's
    # 1 MiB, and a large incoming queue: the floor must never be the one holding a message back.
    async with serve(handler, host, port, compression=None, max_size=2**21, max_queue=1024, ssl=ssl_context, ping_interval=20) as server:
        if ready is not None:
            ready.set()
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        await stop
        server.close()


class Floor:
    """The floor as a child process (``python -m bench.floor``) on a loopback port."""

    def __init__(self, port: int | None = None, *, cert: str | None = None, key: str | None = None):
        self.port = port or free_port()
        self.cert, self.key = cert, key
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'wss' if self.cert else 'ws'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> Floor:
        args = [sys.executable, "-m", "bench.floor", "--port", str(self.port)]
        if self.cert:
            args += ["--cert", self.cert, "--key", self.key]
        self.proc = subprocess.Popen(args, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the floor did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Floor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="A bare websockets server rebroadcasting every text message to every socket on its path.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cert", help="serve wss:// with this certificate (PEM) ...")
    parser.add_argument("--key", help="... and this key")
    args = parser.parse_args(argv)
    ssl_context = None
    if args.cert:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.cert, args.key)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_floor(args.host, args.port, ssl_context=ssl_context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
