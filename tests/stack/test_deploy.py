"""The deployment files and production settings, checked by the tools that use them."""

import os
import secrets
import subprocess

import pytest

from tests.support import PYTHON, ROOT

PRODUCTION_ENV = {
    "TABULA_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://tabula@db.internal:5432/tabula",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "tabula.example.com",
}


def manage(*args, **env):
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TABULA_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"))
    }
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


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


@pytest.mark.processes
class DeployFilesTest:
    def test_nginx_site_rendered_for_stack_nginx_t_accepts(self, stack):
        result = stack.nginx_test()
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr

    def test_supervisor_programs_running_one_gunicorn_two_daphne(self, stack):
        status = stack.supervisorctl("status")
        running = sorted(line.split()[0] for line in status.splitlines() if "RUNNING" in line)
        assert running == ["tabula:tabula-daphne-0", "tabula:tabula-daphne-1", "tabula:tabula-gunicorn"], status
