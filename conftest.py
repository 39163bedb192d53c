"""Fixtures shared by the whole suite: real processes come from stack/processes.py (the local stack's)."""

import shutil

import pytest

from stack import processes


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server on its own port for this test run (never the machine's shared one)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; scripts/test installs it")
    server = processes.start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture(autouse=True)
def fresh_cache():
    """Every test starts with an empty cache: rate budgets and login throttles count there, per user
    id, and ids repeat from one test's database to the next. Only the in-process one is cleared (a
    REDIS_URL in the environment makes the cache a Redis database that is not the suite's to empty)."""
    from django.conf import settings
    from django.core.cache import cache

    local = settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    if local:
        cache.clear()
    yield
    if local:
        cache.clear()
