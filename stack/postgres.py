"""PostgreSQL for the local stack and the tests: the machine's server when it answers, otherwise a
private cluster started here.

Use from a session fixture::

    @pytest.fixture(scope="session")
    def postgres():
        server = postgres.postgres_server()
        yield server
        server.stop()  # stops the cluster only if this run started it

and give each test a throwaway database with ``with server.database() as url: ...`` (dropped afterwards).
``TABULA_TEST_POSTGRES=private`` forces a private cluster even when the machine's server answers.
``StackDatabase`` is the local stack's database, and the outage its fault tests inject.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from stack.processes import free_port

MACHINE_HOST = "127.0.0.1"
MACHINE_PORT = 5432
SUPERUSER = "postgres"


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str = SUPERUSER
    maintenance_db: str = "postgres"
    # Set when this process started the cluster (and so must stop it and remove its files).
    base_dir: Path | None = None
    bin_dir: Path | None = None

    @property
    def private(self) -> bool:
        return self.base_dir is not None

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=dbname or self.maintenance_db, autocommit=True, connect_timeout=5
        )

    def create_database(self, prefix: str = "tabula_test") -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @contextlib.contextmanager
    def database(self, prefix: str = "tabula_test") -> Iterator[str]:
        """A new empty database for the block; yields its URL and drops it afterwards."""
        name = self.create_database(prefix)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)

    def stop(self) -> None:
        """Stops a private cluster and removes its files; the machine's server is left alone."""
        if not self.private:
            return
        data_dir = self.base_dir / "data"
        if (data_dir / "postmaster.pid").exists():
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = None


def machine_postgres(host: str = MACHINE_HOST, port: int = MACHINE_PORT) -> PostgresServer | None:
    """The machine's PostgreSQL when it accepts the superuser without a password, else None."""
    for dbname in ("postgres", "test"):
        server = PostgresServer(host, port, maintenance_db=dbname)
        try:
            with server.connect():
                return server
        except psycopg.OperationalError:
            continue
    return None


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")


def _as_postgres(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: as root, run the command as the postgres user."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", SUPERUSER, "--", *args]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def start_postgres() -> PostgresServer:
    """A private cluster on a free port, trusting local connections; ``stop()`` ends it and removes it.

    Its files live in a new directory under the system temp dir (not pytest's, which only root may
    enter), owned by the postgres user when we are root.
    """
    bin_dir = _bin_dir()
    base_dir = Path(tempfile.mkdtemp(prefix="tabula-pg-"))
    server = PostgresServer(MACHINE_HOST, free_port(), base_dir=base_dir, bin_dir=bin_dir)
    try:
        if os.geteuid() == 0:
            shutil.chown(base_dir, user=SUPERUSER, group=SUPERUSER)
        data_dir = base_dir / "data"
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = f"-p {server.port} -k {base_dir} -c listen_addresses={server.host} -c fsync=off"
        _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(base_dir / "postgres.log"), "-w", "-t", "60", "start"])
    except Exception:
        log = base_dir / "postgres.log"
        detail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        server.stop()
        raise RuntimeError(f"could not start a private PostgreSQL cluster\n{detail}") from None
    return server


def postgres_server() -> PostgresServer:
    """The machine's PostgreSQL on 127.0.0.1:5432 if it answers, otherwise a private cluster."""
    if os.environ.get("TABULA_TEST_POSTGRES") != "private":
        server = machine_postgres()
        if server is not None:
            return server
    return start_postgres()


class StackDatabase:
    """A throwaway database on the machine's PostgreSQL, or on a private cluster (postgres_server above)."""

    def __init__(self):
        self.server = postgres_server()
        self.name = self.server.create_database("tabula_stack")
        self.url = self.server.url(self.name)

    def outage(self, seconds: float) -> None:
        """PostgreSQL refuses new connections for ``seconds`` and drops the open ones.

        A private cluster is shut down (fast mode) and started again; on the machine's server, which
        others share, only this database refuses connections (ALLOW_CONNECTIONS false).
        """
        if self.server.private:
            data = self.server.base_dir / "data"
            options = f"-p {self.server.port} -k {self.server.base_dir} -c listen_addresses={self.server.host} -c fsync=off"
            pg_ctl = str(self.server.bin_dir / "pg_ctl")
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
            try:
                time.sleep(seconds)
            finally:
                _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(self.server.base_dir / "postgres.log"), "-w", "start"])
            return
        database = sql.Identifier(self.name)
        with self.server.connect() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(database))
            try:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [self.name])
                time.sleep(seconds)
            finally:
                conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(database))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.drop_database(self.name)
        self.server.stop()  # only a private cluster is stopped
