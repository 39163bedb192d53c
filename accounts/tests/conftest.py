"""Fixtures for the accounts tests: the throttle counts in the cache, so every test starts with none."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def no_failed_logins():
    cache.clear()
    yield
    cache.clear()
