"""Fixtures for workbook's tests that need more than the default test database."""

import pytest

from stack import postgres as stack_postgres


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server (the machine's, or a private cluster started for this run and stopped after it)."""
    server = stack_postgres.postgres_server()
    yield server
    server.stop()
