"""Real processes for the integration and browser tests: a private Redis, a migrated database, and
daphne and gunicorn serving Tabula exactly as in production. Every process is stopped by its fixture.

The processes, Redis and the HTTP session are the local stack's (stack/processes.py, stack/clients.py),
named here too for the tests; the test environment and the bare daphne and gunicorn are the tests' own.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from stack.clients import HttpSession
from stack.processes import PYTHON, ROOT, ServerProcess, create_user, free_port, manage, start_redis, wait_for_port

__all__ = [
    "BIN",
    "PYTHON",
    "ROOT",
    "HttpSession",
    "ServerProcess",
    "app_env",
    "create_user",
    "free_port",
    "manage",
    "run_python",
    "start_daphne",
    "start_gunicorn",
    "start_redis",
    "wait_for_port",
]

BIN = Path(PYTHON).parent


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


def run_python(env: dict, code: str) -> str:
    """Runs ``code`` in a new Python process with ``env`` (app_env's settings); returns its output."""
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def start_daphne(env: dict, log_dir: Path, port: int | None = None) -> ServerProcess:
    port = port or free_port()
    args = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "proj.asgi:application"]
    return ServerProcess(args, env, log_dir / f"daphne-{port}.log", port).start()


def start_gunicorn(env: dict, log_dir: Path, port: int | None = None, workers: int = 2) -> ServerProcess:
    port = port or free_port()
    args = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", str(workers), "proj.wsgi:application"]
    return ServerProcess(args, env, log_dir / f"gunicorn-{port}.log", port).start()


def scenario_result(database: str, request, tmp_path, scenario: str, **settings) -> dict:
    """Runs a scenario script in a process of its own against a migrated SQLite file or throwaway
    PostgreSQL database (``database``), with these extra settings in its environment; returns the
    JSON it printed."""

    def run(database_url):
        env = app_env(database_url=database_url, var_dir=tmp_path, **settings)
        manage(env, "migrate", "--noinput")
        return json.loads(run_python(env, scenario))

    if database == "sqlite":
        return run(f"sqlite:///{tmp_path / 'scenario.sqlite3'}")
    with request.getfixturevalue("postgres").database(prefix="tabula_scenario") as url:
        return run(url)
