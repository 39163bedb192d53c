"""A deployment of real processes for the integration tests: gunicorn (WSGI) and two daphne (ASGI)
processes sharing a SQLite file database and a private Redis, as separate programs exactly as deployed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests import support

PASSWORD = "integration-pw-1"
USERS = ("ada", "bob", "cy")
MAX_MESSAGE_BYTES = 64 * 1024
SEND_BACKLOG_BYTES = 256 * 1024
_redis_databases = itertools.count(1)  # one Redis database per deployment; the unit tests use 0


@dataclass
class Deployment:
    env: dict
    gunicorn: support.ServerProcess
    daphnes: list[support.ServerProcess]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.gunicorn.port}"

    def ws_url(self, daphne: int, path: str) -> str:
        return f"ws://127.0.0.1:{self.daphnes[daphne].port}{path}"

    def origin(self, daphne: int) -> str:
        return f"http://127.0.0.1:{self.daphnes[daphne].port}"

    def session(self, username: str) -> support.HttpSession:
        """Logged in through gunicorn; daphne accepts the same session (one database, one SECRET_KEY)."""
        return support.HttpSession(self.http_url).login(username, PASSWORD)

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()}" for p in [self.gunicorn, *self.daphnes])


@pytest.fixture(scope="module")
def deployment(redis_url, tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("deployment")
    url = f"{redis_url.rsplit('/', 1)[0]}/{next(_redis_databases)}"
    redis.Redis.from_url(url).flushdb()
    env = support.app_env(
        database_url=f"sqlite:///{root / 'tabula.sqlite3'}",
        redis_url=url,
        var_dir=root / "var",
        # Below daphne's own 1 MiB frame limit (over it daphne drops the connection itself), so an
        # oversized message meets Tabula's check and its 4413 close.
        TABULA_MAX_MESSAGE_BYTES=MAX_MESSAGE_BYTES,
        TABULA_SEND_BACKLOG_BYTES=SEND_BACKLOG_BYTES,
    )
    support.manage(env, "migrate", "--noinput")
    for username in USERS:
        support.create_user(env, username, PASSWORD)
    processes = []
    try:
        processes.append(support.start_gunicorn(env, root))
        processes.extend(support.start_daphne(env, root) for _ in range(2))
        yield Deployment(env, processes[0], processes[1:])
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
def shared_workbook(deployment):
    """A new workbook owned by ada (20 rows x 6 columns), bob its editor, cy its viewer; returns its snapshot."""
    ada = deployment.session("ada")
    status, snapshot = ada.request("POST", "/api/workbooks/", {"name": "Shared", "rows": 20, "cols": 6})
    assert status == 201, snapshot
    for username, role in (("bob", "editor"), ("cy", "viewer")):
        status, body = ada.request("PUT", f"/api/workbooks/{snapshot['id']}/members/{username}", {"role": role})
        assert status == 201, body
    return snapshot
