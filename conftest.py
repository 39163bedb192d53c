"""Fixtures shared by the whole suite: real processes come from tests/support.py."""

import shutil

import pytest

from tests import support


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server on its own port for this test run (never the machine's shared one)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; scripts/test installs it")
    server = support.start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()
