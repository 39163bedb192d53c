"""The processes of the local stack: free ports, a child process with its log, a private Redis, and
manage.py run against a given environment. Every process is stopped by whoever started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@dataclass
class ServerProcess:
    """A child process with its log file; ``stop`` ends it (and its children) gracefully, then by force."""

    args: list[str]
    env: dict
    log_path: Path
    port: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, *, timeout: float = 30.0) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if self.port is not None:
            try:
                wait_for_port(self.port, timeout=timeout, proc=self.proc)
            except Exception as exc:
                raise RuntimeError(f"{self.args[0]} did not start: {exc}\n{self.log()}") from exc
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def start_redis(tmp_dir: Path) -> ServerProcess:
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_dir)]
    return ServerProcess(args, dict(os.environ), tmp_dir / f"redis-{port}.log", port).start()


def manage(env: dict, *args: str, input: str | None = None) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, input=input, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create_user(env: dict, username: str, password: str) -> None:
    code = (
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        f"u, _ = U.objects.get_or_create(username={username!r}); u.set_password({password!r}); u.save()"
    )
    manage(env, "shell", "-c", code)
