"""The deployment files and production settings, checked by the tools that use them."""

import asyncio
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from contextlib import ExitStack

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stack.clients import HttpSession
from stack.local import SHIPPED_LIMITS, VENV, LocalStack
from stack.processes import PYTHON, ROOT, free_port, wait_for_port

PRODUCTION_ENV = {
    "TABULA_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://tabula@db.internal:5432/tabula",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "tabula.example.com",
}


def clean_environment() -> dict[str, str]:
    """This process's environment without any of Tabula's settings."""
    settings = ("DJANGO_", "TABULA_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "EMAIL_", "DEFAULT_FROM_EMAIL")
    return {k: v for k, v in os.environ.items() if not k.startswith(settings)}


def manage(*args, **env):
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**clean_environment(), **env}, capture_output=True, text=True, timeout=120)


class ProductionSettingsTest:
    def test_check_deploy_production_env_no_issues(self):
        result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
        assert result.returncode == 0, result.stderr
        assert "no issues" in result.stdout

    @pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"])
    def test_production_env_variable_missing_refuses_to_start(self, name):
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != name}
        result = manage("check", **env)
        assert result.returncode != 0
        assert f"{name} must be set when TABULA_ENV=production" in result.stderr

    def test_production_env_sqlite_database_refused(self):
        result = manage("check", **{**PRODUCTION_ENV, "DATABASE_URL": "sqlite:////tmp/tabula.sqlite3"})
        assert result.returncode != 0
        assert "must name a PostgreSQL database" in result.stderr

    def test_production_env_settings_secure(self):
        code = (
            "from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, "
            "s.CSRF_TRUSTED_ORIGINS, s.CHANNEL_LAYERS['default']['BACKEND'], s.DATABASES['default']['ENGINE'])"
        )
        result = manage("shell", "-v", "0", "-c", code, **PRODUCTION_ENV)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [
            "False",
            "True",
            "True",
            "('HTTP_X_FORWARDED_PROTO',",
            "'https')",
            "True",
            "['https://tabula.example.com']",
            "channels_redis.pubsub.RedisPubSubChannelLayer",
            "django.db.backends.postgresql",
        ]

    def test_no_environment_embedded_default(self, tmp_path):
        code = (
            "from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'])"
        )
        result = manage("shell", "-v", "0", "-c", code, TABULA_VAR_DIR=str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["False", "False", "django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer"]
        assert (tmp_path / "secret_key").exists()


class EmailSettingsTest:
    NAMES = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD")
    NAMES += ("EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL")

    def settings(self, tmp_path, **env) -> dict:
        code = f"import json; from django.conf import settings as s; print(json.dumps({{n: getattr(s, n) for n in {self.NAMES!r}}}))"
        result = manage("shell", "-v", "0", "-c", code, TABULA_VAR_DIR=str(tmp_path), **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def test_no_email_host_mails_printed_to_console(self, tmp_path):
        found = self.settings(tmp_path)
        assert found["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
        assert found["DEFAULT_FROM_EMAIL"] == "Tabula <tabula@localhost>"

    def test_email_host_smtp_on_submission_port_with_starttls(self, tmp_path):
        env = {"EMAIL_HOST_USER": "tabula", "EMAIL_HOST_PASSWORD": "secret", "DEFAULT_FROM_EMAIL": "workbooks@example.com"}
        assert self.settings(tmp_path, EMAIL_HOST="smtp.example.com", **env) == {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "smtp.example.com",
            "EMAIL_PORT": 587,
            "EMAIL_HOST_USER": "tabula",
            "EMAIL_HOST_PASSWORD": "secret",
            "EMAIL_USE_TLS": True,
            "EMAIL_USE_SSL": False,
            "EMAIL_TIMEOUT": 10,
            "DEFAULT_FROM_EMAIL": "workbooks@example.com",
        }

    @pytest.mark.parametrize(
        ("env", "tls", "ssl"),
        [({"EMAIL_PORT": "465"}, False, True), ({"EMAIL_PORT": "25", "EMAIL_USE_TLS": "off"}, False, False)],
    )
    def test_email_port_and_tls_choices(self, tmp_path, env, tls, ssl):
        found = self.settings(tmp_path, EMAIL_HOST="smtp.example.com", **env)
        assert (found["EMAIL_PORT"], found["EMAIL_USE_TLS"], found["EMAIL_USE_SSL"]) == (int(env["EMAIL_PORT"]), tls, ssl)

    def test_email_tls_and_ssl_both_on_refuses_to_start(self, tmp_path):
        result = manage("check", TABULA_VAR_DIR=str(tmp_path), EMAIL_HOST="smtp.example.com", EMAIL_USE_TLS="on", EMAIL_USE_SSL="on")
        assert result.returncode != 0
        assert "EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (TLS from the start) exclude each other" in result.stderr


@pytest.mark.processes
class DeployFilesTest:
    def test_nginx_site_rendered_for_stack_nginx_t_accepts(self, stack):
        result = stack.nginx_test()
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr

    def test_supervisor_programs_running_one_gunicorn_two_daphne_and_maintenance(self, stack):
        status = stack.supervisorctl("status")
        running = sorted(line.split()[0] for line in status.splitlines() if "RUNNING" in line)
        assert running == ["tabula:tabula-daphne-0", "tabula:tabula-daphne-1", "tabula:tabula-gunicorn", "tabula:tabula-maintenance"], status

    def test_maintenance_program_ran_at_start_and_logged_what_it_did(self, stack):
        path = stack.logs / "maintenance.log"
        deadline = time.monotonic() + 30
        while "prune_changes:" not in (log := path.read_text() if path.exists() else ""):
            assert time.monotonic() < deadline, log
            time.sleep(0.2)
        assert re.search(r"clearsessions: done \(\d+\.\d s\)", log), log
        assert re.search(r"prune_changes: deleted \d+ changes \(\d+\.\d s\)", log), log
        assert "maintenance every 3600 s, keeping 100000 changes per workbook" in log


class EnvFileTest:
    """deploy/bin/env.sh reads /etc/tabula/tabula.env as data: no shell ever runs what it holds."""

    def environment_seen(self, tmp_path, text: str) -> subprocess.CompletedProcess:
        env_file = tmp_path / "tabula.env"
        env_file.write_text(text)
        code = "import json, os; print(json.dumps(dict(os.environ)))"
        env = {**clean_environment(), "TABULA_ENV_FILE": str(env_file), "TABULA_VENV": str(VENV)}
        return subprocess.run(
            [ROOT / "deploy" / "bin" / "manage", "shell", "-v", "0", "-c", code], env=env, capture_output=True, text=True, timeout=60
        )

    def test_env_file_values_taken_literally_nothing_expanded_or_run(self, tmp_path):
        ran = tmp_path / "ran"
        text = (
            f"# a comment, $(touch {ran})\n"
            "; another\n"
            "\n"
            "TABULA_ENV=embedded\n"
            f"TABULA_VAR_DIR={tmp_path}\n"
            f"SECRET_KEY=pa$HOME wo`touch {ran}`rd #not a comment \"q\" 'q'\n"
            f'EMAIL_HOST_PASSWORD="  $(touch {ran}) keeps its spaces "\n'
            "DEFAULT_FROM_EMAIL='Tabula <tabula@example.org>'\n"
            "  TABULA_SPACED  =  around the value  \n"
            "TABULA_EMPTY=\n"
            'TABULA_HALF_QUOTED="abc\r\n'
            "TABULA_LAST=no newline"
        )
        result = self.environment_seen(tmp_path, text)
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
        names = ("TABULA_ENV", "SECRET_KEY", "EMAIL_HOST_PASSWORD", "DEFAULT_FROM_EMAIL", "TABULA_SPACED", "TABULA_EMPTY")
        assert {name: seen.get(name) for name in (*names, "TABULA_HALF_QUOTED", "TABULA_LAST")} == {
            "TABULA_ENV": "embedded",
            "SECRET_KEY": f"pa$HOME wo`touch {ran}`rd #not a comment \"q\" 'q'",
            "EMAIL_HOST_PASSWORD": f"  $(touch {ran}) keeps its spaces ",
            "DEFAULT_FROM_EMAIL": "Tabula <tabula@example.org>",
            "TABULA_SPACED": "around the value",
            "TABULA_EMPTY": "",
            "TABULA_HALF_QUOTED": '"abc',
            "TABULA_LAST": "no newline",
        }
        assert not ran.exists()

    @pytest.mark.parametrize("line", ["export SECRET_KEY=x", "SECRET_KEY", "2FA=on"])
    def test_env_file_line_not_key_value_refuses_to_start_naming_the_line(self, tmp_path, line):
        result = self.environment_seen(tmp_path, f"TABULA_ENV=embedded\n{line}\n")
        assert result.returncode != 0
        assert "tabula.env, line 2: " in result.stderr


@pytest.mark.processes
class ScriptsRunTest:
    def test_scripts_run_reachable_address_random_demo_password_not_the_well_known_one(self, tmp_path):
        port = free_port()
        env = {**clean_environment(), "TABULA_VAR_DIR": str(tmp_path), "TABULA_ADDR": f"0.0.0.0:{port}", "TABULA_VENV": str(VENV)}
        log = tmp_path / "run.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([ROOT / "scripts" / "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, timeout=120, proc=proc)
            printed = log.read_text()
            password = re.search(r"Demo user: demo / password: (\S+)", printed)[1]
            assert password != "demo-password"
            HttpSession(f"http://127.0.0.1:{port}").login("demo", password)
            with pytest.raises(RuntimeError, match="login as demo failed"):
                HttpSession(f"http://127.0.0.1:{port}").login("demo", "demo-password")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


# ---------------------------------------------------------------------------- the nginx site as shipped

ADMIN_NETWORK = "127.0.0.0/28"  # the documented /admin/ restriction, rendered: 127.0.0.1 to .15 allowed


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A stack serving the nginx site as shipped (its limits, no upstream header) with the admin restriction."""
    directory = tmp_path_factory.mktemp("shipped")
    with LocalStack(directory, limits=SHIPPED_LIMITS, show_upstream=False, admin_allow=(ADMIN_NETWORK,)) as stack:
        yield stack


@pytest.fixture(scope="module")
def shipped_workbook(shipped):
    """A logged-in session (the module's only login from 127.0.0.1) and a workbook of its own."""
    alice = shipped.session("alice", "alice-password-1")
    status, created = alice.request("POST", "/api/workbooks/", {"name": "deploy", "rows": 2, "cols": 2})
    assert status == 201, created
    return alice, created["id"]


def fetch(stack, method: str, path: str, *, source: str = "127.0.0.1", headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One HTTPS request to nginx from ``source`` (any 127.0.0.0/8 address reaches 127.0.0.1)."""
    conn = http.client.HTTPSConnection("127.0.0.1", stack.port, context=stack.ssl_context(), source_address=(source, 0), timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def statuses_until_refused(stack, method: str, path: str, *, source: str, most: int) -> tuple[list[int], float]:
    """Requests on one connection until nginx answers 429 (or ``most`` were sent); the statuses and seconds taken."""
    conn = http.client.HTTPSConnection("127.0.0.1", stack.port, context=stack.ssl_context(), source_address=(source, 0), timeout=30)
    statuses, started = [], time.monotonic()
    try:
        while len(statuses) < most and 429 not in statuses:
            conn.request(method, path, body=b"" if method == "POST" else None)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    return statuses, time.monotonic() - started


def open_socket(stack, path: str, *, source: str = "127.0.0.1", session=None, headers: dict | None = None):
    headers = {**({"Cookie": session.cookie_header()} if session else {}), **(headers or {})}
    ssl_context = stack.ssl_context()
    return connect(f"{stack.ws_url}{path}", additional_headers=headers, origin=stack.url, ssl=ssl_context, local_addr=(source, 0), open_timeout=10)


def clients_logged(stack, paths: list[str], timeout: float = 10) -> dict[str, str]:
    """The client each path's request was logged with: gunicorn's access log names it by
    X-Forwarded-For, daphne (--proxy-headers) by that header's leftmost address."""
    logged = {}
    deadline = time.monotonic() + timeout
    while len(logged) < len(paths) and time.monotonic() < deadline:
        logs = ["gunicorn.log", *(f"daphne-{n}.log" for n in range(len(stack.daphne_ports)))]
        for line in (line for name in logs for line in (stack.logs / name).read_text().splitlines()):
            for path in paths:
                if f"GET {path} " in line or f"WSCONNECTING {path}" in line:
                    logged[path] = line.split()[0]
        time.sleep(0.1)
    return logged


def rate(text: str) -> float:
    """nginx's rate ("10r/m", "50r/s") in requests per second."""
    count, unit = re.fullmatch(r"(\d+)r/([ms])", text).groups()
    return int(count) / (60 if unit == "m" else 1)


@pytest.mark.processes
class NginxSiteTest:
    def internal_names(self, stack) -> list[str]:
        return ["daphne", "gunicorn", *(f":{port}" for port in (stack.gunicorn_port, *stack.daphne_ports))]

    async def test_responses_name_nginx_without_version_or_anything_upstream(self, shipped, shipped_workbook):
        alice, workbook_id = shipped_workbook
        responses = {
            "page": fetch(shipped, "GET", "/accounts/login/"),
            "api": fetch(shipped, "GET", "/api/workbooks/"),
            "static": fetch(shipped, "GET", "/static/admin/css/base.css"),
            "nginx's own error": fetch(shipped, "POST", "/api/workbooks/", headers={"Content-Length": "3000000"}),
        }
        plain = http.client.HTTPConnection("127.0.0.1", shipped.http_port, timeout=30)
        plain.request("GET", "/accounts/login/")
        redirect = plain.getresponse()
        responses["port 80's redirect"] = (redirect.status, dict(redirect.headers), redirect.read())
        async with open_socket(shipped, f"/ws/workbooks/{workbook_id}/", session=alice) as ws:
            responses["socket handshake"] = (ws.response.status_code, dict(ws.response.headers), b"")
        assert {name: status for name, (status, _, _) in responses.items()} == {
            "page": 200,
            "api": 401,
            "static": 200,
            "nginx's own error": 413,
            "port 80's redirect": 301,
            "socket handshake": 101,
        }
        for name, (_, headers, body) in responses.items():
            headers = {key.lower(): value for key, value in headers.items()}
            assert headers["server"] == "nginx", name
            assert "x-tabula-upstream" not in headers, name
            for internal in self.internal_names(shipped):
                assert not [value for value in headers.values() if internal in value], (name, internal, headers)
            assert b"nginx/" not in body, name

    async def test_x_forwarded_for_is_the_address_nginx_saw_not_what_the_client_sent(self, shipped):
        probe = secrets.token_hex(6)
        spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
        paths = [f"{path}?probe={probe}" for path in ("/", "/accounts/login/", "/admin/login/", "/api/workbooks/", "/workbooks/1/")]
        for path in paths:
            fetch(shipped, "GET", path, source="127.0.0.2", headers=spoofed)
        socket_path = f"/ws/workbooks/{int(probe, 16)}/"
        with pytest.raises(InvalidStatus):  # no session: refused, after daphne logged who asked
            async with open_socket(shipped, socket_path, source="127.0.0.2", headers=spoofed):
                pass
        logged = clients_logged(shipped, [*paths, socket_path])
        assert logged == {**{path: "127.0.0.2" for path in paths}, socket_path: "127.0.0.2:0"}

    @pytest.mark.parametrize(
        ("path", "source", "other"),
        [
            ("/accounts/login/", "127.0.0.3", "127.0.0.4"),
            ("/accounts/password_reset/", "127.0.0.5", "127.0.0.6"),
            ("/admin/login/", "127.0.0.7", "127.0.0.8"),
        ],
    )
    def test_password_posts_limited_per_address_429(self, shipped, path, source, other):
        statuses, seconds = statuses_until_refused(shipped, "POST", path, source=source, most=60)
        passed = len(statuses) - 1
        allowed = 1 + SHIPPED_LIMITS.login_burst
        assert statuses[-1] == 429, statuses
        assert allowed <= passed <= allowed + rate(SHIPPED_LIMITS.login_rate) * seconds + 1, (statuses, seconds)
        assert fetch(shipped, "GET", path, source=source)[0] == 200  # loading the form is not a guess
        assert fetch(shipped, "POST", path, source=other)[0] != 429

    def test_api_requests_limited_per_address_429(self, shipped):
        statuses, seconds = statuses_until_refused(shipped, "GET", "/api/workbooks/", source="127.0.0.9", most=5000)
        passed = len(statuses) - 1
        allowed = 1 + SHIPPED_LIMITS.api_burst
        assert statuses[-1] == 429, statuses[-5:]
        assert set(statuses[:-1]) == {401}
        assert allowed <= passed <= allowed + rate(SHIPPED_LIMITS.api_rate) * seconds + 1, (passed, seconds)
        assert fetch(shipped, "GET", "/api/workbooks/", source="127.0.0.10")[0] == 401

    async def test_open_sockets_limited_per_address_429(self, shipped, shipped_workbook):
        alice, workbook_id = shipped_workbook
        path = f"/ws/workbooks/{workbook_id}/"
        with ExitStack() as held:
            # Requests waiting for their body hold their connection in /ws/ as an open socket does.
            for _ in range(SHIPPED_LIMITS.sockets):
                conn = held.enter_context(socket.create_connection(("127.0.0.1", shipped.port), source_address=("127.0.0.11", 0)))
                tls = held.enter_context(shipped.ssl_context().wrap_socket(conn, server_hostname="127.0.0.1"))
                tls.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n".encode())
            await asyncio.sleep(0.5)  # nginx reads each request's header
            with pytest.raises(InvalidStatus) as refused:
                async with open_socket(shipped, path, source="127.0.0.11", session=alice):
                    pass
            assert refused.value.response.status_code == 429
            async with open_socket(shipped, path, source="127.0.0.12", session=alice) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "hello"
        async with open_socket(shipped, path, source="127.0.0.11", session=alice) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "hello"

    def test_admin_restricted_as_documented_login_included(self, shipped):
        for path in ("/admin/", "/admin/login/"):
            assert fetch(shipped, "GET", path, source="127.0.0.200")[0] == 403, path
        assert fetch(shipped, "GET", "/accounts/login/", source="127.0.0.200")[0] == 200
        assert fetch(shipped, "GET", "/admin/login/", source="127.0.0.13")[0] == 200
