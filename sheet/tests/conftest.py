"""Fixtures for sheet's tests that need more than the default test database."""

import pytest

from tests import support_pg


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server (the machine's, or a private cluster started for this run and stopped after it)."""
    server = support_pg.postgres_server()
    yield server
    server.stop()
