"""The deployment files and production settings, checked by the tools that use them."""

import json
import os
import re
import secrets
import signal
import subprocess
import time

import pytest

from tests.localstack import VENV
from tests.support import PYTHON, ROOT, HttpSession, free_port, wait_for_port

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
        env = {"EMAIL_HOST_USER": "tabula", "EMAIL_HOST_PASSWORD": "secret", "DEFAULT_FROM_EMAIL": "sheets@example.com"}
        assert self.settings(tmp_path, EMAIL_HOST="smtp.example.com", **env) == {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "smtp.example.com",
            "EMAIL_PORT": 587,
            "EMAIL_HOST_USER": "tabula",
            "EMAIL_HOST_PASSWORD": "secret",
            "EMAIL_USE_TLS": True,
            "EMAIL_USE_SSL": False,
            "EMAIL_TIMEOUT": 10,
            "DEFAULT_FROM_EMAIL": "sheets@example.com",
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
        assert "maintenance every 3600 s, keeping 100000 changes per sheet" in log


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
