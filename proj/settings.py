"""Tabula settings: one module, every deployment-specific value from the environment.

The defaults give the embedded mode (SQLite, in-memory channel layer, a secret key kept in
``var/``). ``TABULA_ENV=production`` is the production switch: it requires ``SECRET_KEY``,
``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` and ``ALLOWED_HOSTS``, turns ``DEBUG`` off, and makes the
secure defaults that ``manage.py check --deploy`` asks for (TLS-only cookies, the proxy's
X-Forwarded-Proto trusted, HTTPS redirect, HSTS); docs/operations.md lists every variable.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TABULA_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_required(name):
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when TABULA_ENV=production (docs/operations.md)")
    return value


def local_secret_key():
    """A per-installation key for the embedded mode, created once and kept in var/."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


TABULA_ENV = os.environ.get("TABULA_ENV", "embedded").strip().lower()
if TABULA_ENV not in {"embedded", "production"}:
    raise ImproperlyConfigured(f'TABULA_ENV is "embedded" (the default) or "production", not {TABULA_ENV!r}')
PRODUCTION = TABULA_ENV == "production"

if PRODUCTION:
    DEBUG = False
    SECRET_KEY = env_required("SECRET_KEY")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when TABULA_ENV=production (docs/operations.md)")
else:
    DEBUG = env_bool("DEBUG", False)
    SECRET_KEY = os.environ.get("SECRET_KEY") or local_secret_key()
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
# Behind the TLS proxy the browser's origin is https://<host>; listed so a non-default port works too.
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", [f"https://{host}" for host in ALLOWED_HOSTS if not host.startswith(".")] if PRODUCTION else []
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "accounts",
    "workbooks",
    "sheet",  # v1's app, kept for its migrations (the last one hands its data to workbooks)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "proj.middleware.security_headers",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "proj.middleware.refuse_bad_text",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "proj.urls"
WSGI_APPLICATION = "proj.wsgi.application"
ASGI_APPLICATION = "proj.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_required("DATABASE_URL") if PRODUCTION else os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'tabula.sqlite3'}",
        # Health checks let a process whose kept connection died (say PostgreSQL restarted) reconnect.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0),
        conn_health_checks=True,
    )
}
if PRODUCTION and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://...) when TABULA_ENV=production")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # psycopg prepares a statement the fifth time a connection runs it. Only the edits' statements
    # bind parameters on the server (workbooks/services.py, commit_sets), so only they are prepared, and
    # then PostgreSQL does not parse them again (it still plans each run for its parameters; see
    # commit_sets): 1.6-1.8 ms of PostgreSQL's time per lone edit against 2.5. Turn off behind a
    # pooler in transaction mode that does not track prepared statements (PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two processes allocating the next
    # revision of a workbook queue on the lock instead of failing on a lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_required("REDIS_URL") if PRODUCTION else os.environ.get("REDIS_URL", "")
if REDIS_URL:
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    # After Redis restarts, every connection kept in a pool is dead and fails its next command:
    # without a retry each would cost a socket (or an HTTP broadcast) one error. A retry reconnects.
    redis_backoff = ExponentialBackoff(cap=0.5, base=0.05)
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: a broadcast is one PUBLISH that Redis pushes to each subscribed server process,
            # where the core layer costs about ten commands per message between sender and readers
            # (workbooks/fanout.py: each process reads one channel for all its workbooks). It keeps nothing
            # for a process that is away (a Redis restart loses what was in flight, silently): the
            # revisions in every change, and the fan-out hub's checks, are what make that safe.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "retry": AsyncRetry(redis_backoff, 3)}]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"retry": Retry(redis_backoff, 3)},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "workbook-list"
LOGOUT_REDIRECT_URL = "login"
# ModelBackend behind the login throttle: failures counted per username and per client address in the
# cache (shared by every process through Redis); docs/operations.md, "Login throttling".
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
TABULA_LOGIN_THROTTLE = {
    "failures_per_username": env_int("TABULA_LOGIN_FAILURES_PER_USERNAME", 5),
    "failures_per_address": env_int("TABULA_LOGIN_FAILURES_PER_ADDRESS", 20),
    "window_seconds": env_int("TABULA_LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60),
    "lockout_seconds": env_int("TABULA_LOGIN_LOCKOUT_SECONDS", 5 * 60),
    "max_lockout_seconds": env_int("TABULA_LOGIN_MAX_LOCKOUT_SECONDS", 60 * 60),
}
# Peers whose X-Forwarded-For names the client (accounts/addresses.py): nginx, on this machine.
TABULA_TRUSTED_PROXIES = env_list("TABULA_TRUSTED_PROXIES", ["127.0.0.1", "::1"])

# Mail: password reset links. Without EMAIL_HOST each mail is written to the server's output instead
# (the console backend), which is where the person running the embedded mode looks.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "").strip()
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
    if EMAIL_USE_SSL and EMAIL_USE_TLS:
        raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (TLS from the start) exclude each other")
    # A mail server that does not answer must not hold a web worker for long.
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tabula <tabula@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))

CSRF_FAILURE_VIEW = "workbooks.api.csrf_failure"
# Production sits behind nginx terminating TLS (deploy/nginx/tabula.conf), which always sets
# X-Forwarded-Proto; each of these can be turned off by its variable (say for a plain-HTTP test box).
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if env_bool("BEHIND_TLS_PROXY", PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    # Preloading commits the whole domain to HTTPS in browsers' built-in lists: the domain owner's
    # decision (SECURE_HSTS_PRELOAD=1), so check --deploy is not asked to push for it.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

HANDSONTABLE_LICENSE_KEY = os.environ.get("HANDSONTABLE_LICENSE_KEY", "non-commercial-and-evaluation")

# The wire contract's limits (docs/protocol.md). Each can be raised or lowered per deployment.
TABULA_LIMITS = {
    "max_value_chars": env_int("TABULA_MAX_VALUE_CHARS", 10_000),
    "max_formula_chars": env_int("TABULA_MAX_FORMULA_CHARS", 8_192),
    "max_message_bytes": env_int("TABULA_MAX_MESSAGE_BYTES", 1024 * 1024),
    "max_cells_per_set": env_int("TABULA_MAX_CELLS_PER_SET", 10_000),
    "max_rows": env_int("TABULA_MAX_ROWS", 100_000),
    "max_cols": env_int("TABULA_MAX_COLS", 1_000),
    "max_name_chars": env_int("TABULA_MAX_NAME_CHARS", 200),
    "max_insert_count": env_int("TABULA_MAX_INSERT_COUNT", 10_000),
    "ops_per_second": env_int("TABULA_OPS_PER_SECOND", 250),
    "ops_burst": env_int("TABULA_OPS_BURST", 500),
    "http_ops_per_minute": env_int("TABULA_HTTP_OPS_PER_MINUTE", 6_000),
    "max_sync_changes": env_int("TABULA_MAX_SYNC_CHANGES", 5_000),
    "max_cells": env_int("TABULA_MAX_CELLS", 10_000_000),
    "max_sheets": env_int("TABULA_MAX_SHEETS", 200),
    "max_sync_bytes": env_int("TABULA_MAX_SYNC_BYTES", 8 * 1024 * 1024),
    "max_workbooks_per_user": env_int("TABULA_MAX_WORKBOOKS_PER_USER", 1_000),
    "creates_per_hour": env_int("TABULA_CREATES_PER_HOUR", 100),
    "max_members": env_int("TABULA_MAX_MEMBERS", 1_000),
}
# A socket its client sent nothing on for this long is closed and leaves presence; 0: never.
TABULA_SOCKET_SILENCE_SECONDS = env_int("TABULA_SOCKET_SILENCE_SECONDS", 30)
# Sockets one user may hold on one server process (each daphne process counts its own); past it a
# handshake is refused. 0: no limit.
TABULA_MAX_SOCKETS_PER_USER = env_int("TABULA_MAX_SOCKETS_PER_USER", 50)
# What a socket's client may leave unread beyond daphne's 64 KiB write buffer before the server stops
# sending it broadcasts and tells it to reload (docs/architecture.md, "A client that does not read").
TABULA_SEND_BACKLOG_BYTES = env_int("TABULA_SEND_BACKLOG_BYTES", 8 * 1024 * 1024)
# Django refuses bodies over this before our own check can answer 413; keep it just above ours.
DATA_UPLOAD_MAX_MEMORY_SIZE = TABULA_LIMITS["max_message_bytes"] + 1024

# The maintenance program (manage.py maintenance, supervisor's tabula-maintenance): how often it
# deletes expired sessions and old changes, and how many changes of each workbook it keeps.
TABULA_MAINTENANCE_SECONDS = env_int("TABULA_MAINTENANCE_SECONDS", 3600)
TABULA_KEEP_CHANGES = env_int("TABULA_KEEP_CHANGES", 100_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
