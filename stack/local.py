"""The production shape on one machine, on loopback, without root and without touching system services.

``LocalStack`` starts PostgreSQL (a throwaway database on the server at 127.0.0.1:5432, or a private
cluster when none answers there), a private Redis, then runs ``deploy/bin/migrate`` and starts the
programs of ``deploy/supervisor/tabula.conf`` (gunicorn, two daphne processes and the maintenance)
under a private supervisord, and a private nginx master serving ``deploy/nginx/tabula.conf`` over TLS
with a self-signed certificate. Both configuration files are used as committed, with only their
server-specific values (paths, ports, host name, certificate, nginx's limits per client address)
replaced; ``render`` fails when a value it replaces is missing, so the files and the stack cannot drift
apart.

It is a context manager for tests and benchmarks, and ``scripts/stack`` runs it from the command line::

    with LocalStack() as stack:
        session = stack.session("alice", "pw")   # creates the user, logs in through nginx
        ...

The faults the tests inject live here too: ``kill_daphne``, ``restart_redis``, ``postgres_outage``,
``restart_gunicorn``.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from stack import processes
from stack.clients import HttpSession
from stack.postgres import StackDatabase

ROOT = processes.ROOT
DEPLOY = ROOT / "deploy"
VENV = Path(sys.executable).parent.parent
DAPHNE_PROCESSES = 2  # numprocs in deploy/supervisor/tabula.conf


@dataclass(frozen=True)
class NginxLimits:
    """nginx's limits per client address in deploy/nginx/tabula.conf; the defaults are the shipped values."""

    login_rate: str = "10r/m"
    login_burst: int = 5
    api_rate: str = "50r/s"
    api_burst: int = 100
    sockets: int = 50

    def replacements(self) -> dict[str, str]:
        """What render replaces in the site to put these limits in place of the shipped ones."""
        shipped, wanted = asdict(SHIPPED_LIMITS), asdict(self)
        patterns = {
            "login_rate": "zone=tabula_login:10m rate={};",
            "login_burst": "zone=tabula_login burst={} nodelay;",
            "api_rate": "zone=tabula_api:10m rate={};",
            "api_burst": "zone=tabula_api burst={} nodelay;",
            "sockets": "limit_conn tabula_ws_addr {};",
        }
        return {pattern.format(shipped[name]): pattern.format(wanted[name]) for name, pattern in patterns.items()}


SHIPPED_LIMITS = NginxLimits()
# Every test and benchmark client comes from 127.0.0.1: bench/fanout.py holds about 1,000 sockets through
# nginx, and the tests log in dozens of times a minute. The shipped limits are tested on their own
# (tests/stack/test_deploy.py).
LOAD_LIMITS = NginxLimits(login_rate="100000r/m", login_burst=10_000, api_rate="100000r/s", api_burst=100_000, sockets=60_000)


# The example in the site's /admin/ location, commented out as shipped.
ADMIN_EXAMPLE = "        #     allow 192.0.2.0/24;\n        #     deny all;\n"


def render(text: str, replacements: dict[str, str]) -> str:
    """Replaces each production value by the local one; every value must occur in the text."""
    for production, local in replacements.items():
        if production not in text:
            raise ValueError(f"{production!r} is not in the configuration any more: update stack/local.py")
        text = text.replace(production, local)
    return text


def free_port_pair() -> int:
    """A free port P with P + 1 free too (the daphne processes listen on consecutive ports)."""
    for _ in range(100):
        port = processes.free_port()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port + 1)) != 0:
                try:
                    s2 = socket.socket()
                    s2.bind(("127.0.0.1", port + 1))
                    s2.close()
                    return port
                except OSError:
                    continue
    raise RuntimeError("no two consecutive free ports")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; clients trust it as their only CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tabula local stack")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


# ------------------------------------------------------------------ the stack


def ensure_packages(*extra: str) -> None:
    """Installs the system packages the stack runs when one is missing (as scripts/stack does), and
    ``extra`` ones ("command:package", scripts/lib.sh's form), so a benchmark works from a fresh clone too."""
    needed = [pair.partition(":")[0] for pair in extra]
    if all(shutil.which(name) or Path(name).exists() for name in ("redis-server", "nginx", "supervisord", "/usr/lib/postgresql", *needed)):
        return
    command = f"source scripts/lib.sh && ensure_packages $STACK_PACKAGES {' '.join(extra)}"
    subprocess.run(["bash", "-c", command], cwd=ROOT, check=True, timeout=1800)


class LocalStack:
    """PostgreSQL, Redis, gunicorn, two daphne processes and the maintenance (under supervisord) and nginx, on loopback."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        gunicorn_workers: int = 2,
        spread_workbooks: bool = False,
        limits: NginxLimits = LOAD_LIMITS,
        show_upstream: bool = True,
        admin_allow: tuple[str, ...] = (),
    ):
        """``spread_workbooks``: nginx balances sockets with least_conn instead of the site's hash of the
        workbook, so one workbook's sockets land on both daphne processes (for tests of the paths between them).
        ``limits``: nginx's limits per client address (high enough for benchmarks by default; the
        site's own are ``SHIPPED_LIMITS``). ``show_upstream``: the socket handshake's response names
        the daphne process in X-Tabula-Upstream (the site as shipped does not). ``admin_allow``: the
        addresses or networks allowed into /admin/, everyone else refused, as docs/operations.md shows
        (the site as shipped allows everyone)."""
        self.owns_directory = directory is None
        self.spread_workbooks = spread_workbooks
        self.limits = limits
        self.show_upstream = show_upstream
        self.admin_allow = admin_allow
        self.dir = Path(directory or tempfile.mkdtemp(prefix="tabula-stack-"))
        self.gunicorn_workers = gunicorn_workers
        self.logs = self.dir / "log"
        self.port = processes.free_port()
        self.http_port = processes.free_port()
        self.gunicorn_port = processes.free_port()
        self.daphne_base_port = free_port_pair()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ws_url = f"wss://127.0.0.1:{self.port}"
        self.postgres = None
        self.redis: processes.ServerProcess | None = None
        self.supervisord: processes.ServerProcess | None = None
        self.nginx: processes.ServerProcess | None = None
        self.users: dict[str, str] = {}

    # ---------------------------------------------------------- start and stop

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalStack:
        ensure_packages()
        for sub in ("log", "nginx", "static", "var", "acme", "redis"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.cert, self.key = make_certificate(self.dir)
        self.postgres = StackDatabase()
        self.redis = processes.start_redis(self.dir / "redis")
        self.database_url = self.postgres.url
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"
        self.settings = self.app_settings()
        self.env_file = self.dir / "tabula.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))
        self.env = self.process_env()
        subprocess.run([str(DEPLOY / "bin" / "migrate")], cwd=ROOT, env=self.env, check=True, capture_output=True, timeout=300)
        self.start_supervisord()
        self.write_nginx_config()
        self.nginx = processes.ServerProcess(self.nginx_command(), self.env, self.logs / "nginx.out", self.port).start()
        self.wait_until_serving()
        return self

    def app_settings(self) -> dict[str, str]:
        """The environment file: what /etc/tabula/tabula.env holds in production."""
        return {
            "TABULA_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": f"https://127.0.0.1:{self.port},https://localhost:{self.port}",
            "STATIC_ROOT": str(self.dir / "static"),
            "TABULA_VAR_DIR": str(self.dir / "var"),
            "TABULA_GUNICORN_BIND": f"127.0.0.1:{self.gunicorn_port}",
            "TABULA_GUNICORN_WORKERS": str(self.gunicorn_workers),
            "TABULA_DAPHNE_BASE_PORT": str(self.daphne_base_port),
            # No cap on one user's sockets (the site's is 50 per process): the benchmarks hold
            # thousands of sockets as one user.
            "TABULA_MAX_SOCKETS_PER_USER": "0",
        }

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COV_CORE", "TABULA_", "DATABASE_URL", "REDIS_URL"))}
        env.update(TABULA_ENV_FILE=str(self.env_file), TABULA_VENV=str(VENV))
        return env

    def app_env(self) -> dict[str, str]:
        """The environment a management command needs to act on this stack's database."""
        return {**self.env, **self.settings, "DJANGO_SETTINGS_MODULE": "proj.settings"}

    def start_supervisord(self) -> None:
        programs = render(
            (DEPLOY / "supervisor" / "tabula.conf").read_text(),
            {"/srv/tabula": str(ROOT), "/var/log/tabula": str(self.logs), "user=tabula": f"user={getpass.getuser()}"},
        )
        (self.dir / "supervisor-tabula.conf").write_text(programs)
        self.supervisor_conf = self.dir / "supervisord.conf"
        self.supervisor_conf.write_text(
            f"""[unix_http_server]
file={self.dir}/supervisor.sock

[supervisord]
logfile={self.logs}/supervisord.log
pidfile={self.dir}/supervisord.pid
childlogdir={self.logs}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{self.dir}/supervisor.sock

[include]
files = {self.dir}/supervisor-tabula.conf
"""
        )
        supervisord = shutil.which("supervisord") or "/usr/bin/supervisord"
        self.supervisord = processes.ServerProcess(
            [supervisord, "-n", "-c", str(self.supervisor_conf)], self.env, self.logs / "supervisord.out"
        ).start()
        for port in (self.gunicorn_port, *self.daphne_ports):
            processes.wait_for_port(port, timeout=60, proc=self.supervisord.proc)
        self.wait_running()

    def wait_running(self, timeout: float = 60) -> None:
        """Waits until supervisor reports every program RUNNING (up for its startsecs)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.supervisorctl("status")
            lines = [line for line in status.splitlines() if line.strip()]
            if lines and all(" RUNNING " in line for line in lines):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"supervisor programs not running after {timeout}s:\n{status}")
            time.sleep(0.2)

    @property
    def daphne_ports(self) -> list[int]:
        return [self.daphne_base_port + n for n in range(DAPHNE_PROCESSES)]

    def write_nginx_config(self) -> None:
        site = render(
            (DEPLOY / "nginx" / "tabula.conf").read_text(),
            {
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                "    listen [::]:80;\n": "",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{self.port} ssl http2;",
                "    listen [::]:443 ssl http2;\n": "",
                "server_name tabula.example.com;": "server_name 127.0.0.1 localhost;",
                "/etc/letsencrypt/live/tabula.example.com/fullchain.pem": str(self.cert),
                "/etc/letsencrypt/live/tabula.example.com/privkey.pem": str(self.key),
                "/var/www/html": str(self.dir / "acme"),
                "/var/log/nginx/tabula": str(self.logs / "nginx-tabula"),
                "/srv/tabula/staticfiles/": f"{self.dir / 'static'}/",
                "127.0.0.1:8000 ": f"127.0.0.1:{self.gunicorn_port} ",
                "127.0.0.1:8001 ": f"127.0.0.1:{self.daphne_ports[0]} ",
                "127.0.0.1:8002 ": f"127.0.0.1:{self.daphne_ports[1]} ",
                **({"    hash $uri consistent;\n": "    least_conn;\n"} if self.spread_workbooks else {}),
                **self.limits.replacements(),
                **({"# add_header X-Tabula-Upstream": "add_header X-Tabula-Upstream"} if self.show_upstream else {}),
                **({ADMIN_EXAMPLE: self.admin_rules()} if self.admin_allow else {}),
            },
        )
        nginx_dir = self.dir / "nginx"
        (nginx_dir / "tabula.conf").write_text(site)
        temp_paths = "\n".join(f"    {kind}_temp_path {nginx_dir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # A master started by root would hand its workers to "nobody", who cannot read this directory.
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        self.nginx_conf = nginx_dir / "nginx.conf"
        self.nginx_conf.write_text(
            f"""# The main file of a private nginx master; the site is deploy/nginx/tabula.conf, rendered.
{user}daemon off;
worker_processes 2;
pid {nginx_dir}/nginx.pid;
error_log {self.logs}/nginx-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {self.logs}/nginx-access.log;
{temp_paths}
    include {nginx_dir}/tabula.conf;
}}
"""
        )

    def admin_rules(self) -> str:
        return "".join(f"        allow {allowed};\n" for allowed in self.admin_allow) + "        deny all;\n"

    def nginx_command(self, *extra: str) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", f"{self.dir / 'nginx'}/", "-c", str(self.nginx_conf), "-e", str(self.logs / "nginx-error.log"), *extra]

    def nginx_test(self) -> subprocess.CompletedProcess:
        """``nginx -t`` on the rendered configuration."""
        return subprocess.run(self.nginx_command("-t"), capture_output=True, text=True, timeout=30)

    def wait_until_serving(self, timeout: float = 60) -> float:
        """Waits until the login page loads through nginx; returns the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/accounts/login/", context=self.ssl_context(), timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the stack does not serve {self.url} after {timeout}s:\n{self.log('nginx-error.log')}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        if self.supervisord is not None:
            self.supervisord.stop()  # SIGTERM: supervisord stops every program with its stopsignal
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.owns_directory and not os.environ.get("TABULA_KEEP_STACK"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------- clients

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def create_user(self, username: str, password: str) -> None:
        if self.users.get(username) != password:
            processes.create_user(self.app_env(), username, password)
            self.users[username] = password

    def session(self, username: str, password: str) -> HttpSession:
        """A logged-in HTTP session through nginx (the user is created when missing)."""
        self.create_user(username, password)
        return HttpSession(self.url, ssl_context=self.ssl_context()).login(username, password)

    def log(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # ---------------------------------------------------------- faults

    def supervisorctl(self, *args: str) -> str:
        result = subprocess.run(
            [shutil.which("supervisorctl") or "/usr/bin/supervisorctl", "-c", str(self.supervisor_conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout

    def daphne_pid(self, number: int) -> int:
        return int(self.supervisorctl("pid", f"tabula:tabula-daphne-{number}").strip())

    def kill_daphne(self, number: int) -> None:
        """SIGKILL to one daphne process; supervisor starts it again (autorestart)."""
        os.kill(self.daphne_pid(number), signal.SIGKILL)

    def restart_redis(self, down_seconds: float = 1.0) -> None:
        """Stops Redis (its groups and queues are lost: nothing is saved) and starts it again on the same port."""
        self.redis.stop()
        time.sleep(down_seconds)
        self.redis = processes.ServerProcess(self.redis.args, self.redis.env, self.redis.log_path, self.redis.port).start()

    def postgres_outage(self, seconds: float) -> None:
        self.postgres.outage(seconds)

    def restart_gunicorn(self) -> None:
        """supervisorctl restart: a graceful stop, then a new master and workers."""
        self.supervisorctl("restart", "tabula:tabula-gunicorn")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Runs Tabula's production shape on loopback until Ctrl-C.")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", default="demo-password")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stack = LocalStack(limits=SHIPPED_LIMITS, show_upstream=False)  # the site as shipped
    try:
        print(f"starting the stack in {stack.dir} ...", flush=True)
        stack.start()
        processes.manage(stack.app_env(), "seed_demo", "--username", args.user, "--password", args.password)
        print(f"Tabula is at {stack.url}/ (user {args.user}, password {args.password})")
        print(f"The certificate is self-signed: {stack.cert}")
        print(f"PostgreSQL: {stack.database_url}\nRedis: {stack.redis_url}\nLogs: {stack.logs}")
        print("Stop with Ctrl-C.", flush=True)
        while stack.supervisord.proc.poll() is None and stack.nginx.proc.poll() is None:
            time.sleep(1)
        print("a process of the stack exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("stopping ...", flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
