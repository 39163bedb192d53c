"""Fixtures shared by the workbooks app's tests: a user, and a PostgreSQL server for the tests that need more than the default test database."""

import pytest
from django.contrib.auth import get_user_model
from model_bakery import baker

from stack import postgres as stack_postgres


@pytest.fixture
def ada():
    """A user, ada (the owner of most tests' workbooks)."""
    return baker.make(get_user_model(), username="ada")


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server (the machine's, or a private cluster started for this run and stopped after it)."""
    server = stack_postgres.postgres_server()
    yield server
    server.stop()
