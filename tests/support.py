"""Real processes for the integration and browser tests: a private Redis, a migrated database, and
daphne and gunicorn serving Tabula exactly as in production. Every process is stopped by its fixture.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


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


def app_env(*, database_url: str, redis_url: str = "", var_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COV_CORE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="proj.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TABULA_VAR_DIR=str(var_dir),
        SECRET_KEY="test-secret-key-for-real-processes-only-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env: dict, *args: str, input: str | None = None) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, input=input, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def run_python(env: dict, code: str) -> str:
    """Runs ``code`` in a new Python process with ``env`` (app_env's settings); returns its output."""
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def create_user(env: dict, username: str, password: str) -> None:
    code = (
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        f"u, _ = U.objects.get_or_create(username={username!r}); u.set_password({password!r}); u.save()"
    )
    manage(env, "shell", "-c", code)


def start_daphne(env: dict, log_dir: Path, port: int | None = None) -> ServerProcess:
    port = port or free_port()
    args = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "proj.asgi:application"]
    return ServerProcess(args, env, log_dir / f"daphne-{port}.log", port).start()


def start_gunicorn(env: dict, log_dir: Path, port: int | None = None, workers: int = 2) -> ServerProcess:
    port = port or free_port()
    args = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", str(workers), "proj.wsgi:application"]
    return ServerProcess(args, env, log_dir / f"gunicorn-{port}.log", port).start()


class HttpSession:
    """A script's view of the API: logs in through /accounts/login/ and reuses the session cookie."""

    def __init__(self, base_url: str, *, ssl_context=None):
        self.base_url = base_url.rstrip("/")
        self.jar = CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self.opener = urllib.request.build_opener(*handlers)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def login(self, username: str, password: str) -> HttpSession:
        page = self.opener.open(f"{self.base_url}/accounts/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(f"{self.base_url}/accounts/login/", data=form, headers={"Referer": f"{self.base_url}/accounts/login/"})
        self.opener.open(request, timeout=30)
        if not self.cookie("sessionid"):
            raise RuntimeError(f"login as {username} failed")
        return self

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken") or "", "Referer": self.base_url + "/"}
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
