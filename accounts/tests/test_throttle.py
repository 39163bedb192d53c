"""The throttle's counting, on a cache of its own and a clock the tests move."""

import runpy
import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from accounts.throttle import Locked, LoginThrottle, Policy, normalise_username

POLICY = Policy(failures_per_username=3, failures_per_address=5, window_seconds=900, lockout_seconds=60, max_lockout_seconds=200)


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(scope="session")
def production_cache(redis_url):
    """CACHES["default"] exactly as proj/settings.py builds it for a deployment with REDIS_URL set."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REDIS_URL", redis_url)
        env.delenv("TABULA_ENV", raising=False)
        return runpy.run_path(str(django_settings.BASE_DIR / "proj" / "settings.py"))["CACHES"]["default"]


@pytest.fixture(params=["locmem", "redis"])
def cache(request):
    """Each test on a cache of its own: in memory, then the production Redis cache (as every worker sees it)."""
    if request.param == "locmem":
        return LocMemCache(request.node.name, {})
    production = request.getfixturevalue("production_cache")
    assert production["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    return RedisCache(production["LOCATION"], {"OPTIONS": production["OPTIONS"], "KEY_PREFIX": uuid.uuid4().hex})


@pytest.fixture
def limiter(cache, clock):
    return LoginThrottle(cache=cache, policy=POLICY, clock=clock)


def fail(limiter, times, username="ada", address="192.0.2.1"):
    return [limiter.record_failure(username=username, address=address) for _ in range(times)]


class LoginThrottleTest:
    def test_lockout_fresh_none(self, limiter):
        assert limiter.lockout(username="ada", address="192.0.2.1") is None

    def test_record_failure_username_limit_reached_locked_for_lockout_seconds(self, limiter):
        started = fail(limiter, 3)
        assert started == [[], [], [Locked("username", "ada", 60)]]
        lockout = limiter.lockout(username="ada", address="198.51.100.9")
        assert (lockout.seconds_left, lockout.minutes_left) == (60, 1)

    def test_record_failure_below_limit_not_locked(self, limiter):
        fail(limiter, 2)
        assert limiter.lockout(username="ada", address="192.0.2.1") is None

    def test_lockout_username_any_spelling(self, limiter):
        fail(limiter, 3, username="Ada")
        for spelling in ("ada", "ADA", " ada ", "ａｄａ"):
            assert limiter.lockout(username=spelling, address=None) is not None

    def test_lockout_ends_after_lockout_seconds(self, limiter, clock):
        fail(limiter, 3)
        clock.now += 59
        assert limiter.lockout(username="ada", address=None).seconds_left == 1
        clock.now += 1
        assert limiter.lockout(username="ada", address=None) is None

    def test_lockout_again_twice_as_long_up_to_the_maximum(self, limiter, clock):
        lengths = []
        for _ in range(4):
            lengths.append(fail(limiter, 3)[-1][0].seconds)
            clock.now += lengths[-1]
        assert lengths == [60, 120, 200, 200]

    def test_record_failure_after_lockout_counts_afresh(self, limiter, clock):
        fail(limiter, 3, address=None)
        clock.now += 60
        assert fail(limiter, 2, address=None) == [[], []]
        assert limiter.lockout(username="ada", address=None) is None

    def test_record_failure_address_limit_other_usernames_count_together(self, limiter):
        for name in ("ada", "bob", "cy", "dee"):
            limiter.record_failure(username=name, address="192.0.2.1")
        assert limiter.lockout(username="eve", address="192.0.2.1") is None
        assert limiter.record_failure(username="eve", address="192.0.2.1") == [Locked("address", "192.0.2.1", 60)]
        assert limiter.lockout(username="eve", address="192.0.2.1") is not None
        assert limiter.lockout(username="eve", address="192.0.2.2") is None

    def test_record_failure_ipv6_counted_per_64(self, limiter):
        for host in range(1, 6):
            limiter.record_failure(username=f"user{host}", address=f"2001:db8:1:2::{host}")
        assert limiter.lockout(username="new", address="2001:db8:1:2:ffff::1") is not None
        assert limiter.lockout(username="new", address="2001:db8:1:3::1") is None

    def test_record_success_clears_username_not_address(self, limiter):
        fail(limiter, 3)
        for name in ("bob", "cy"):
            limiter.record_failure(username=name, address="192.0.2.1")
        limiter.record_success(username="ADA")
        assert limiter.lockout(username="ada", address=None) is None
        # The address has its five failures: ada's three, bob's and cy's.
        assert limiter.lockout(username="bob", address="192.0.2.1") is not None

    def test_record_success_forgets_past_lockouts(self, limiter, clock):
        fail(limiter, 3)
        clock.now += 60
        limiter.record_success(username="ada")
        assert fail(limiter, 3)[-1] == [Locked("username", "ada", 60)]

    def test_record_failure_no_address_username_only(self, limiter):
        assert fail(limiter, 3, address=None)[-1] == [Locked("username", "ada", 60)]

    def test_record_failure_seen_by_every_process_sharing_the_cache(self, cache, clock):
        workers = [LoginThrottle(cache=cache, policy=POLICY, clock=clock) for _ in range(3)]
        for worker in workers:
            worker.record_failure(username="ada", address=None)
        assert all(worker.lockout(username="ada", address=None) is not None for worker in workers)

    def test_record_failure_window_from_first_failure(self, cache, clock):
        limiter = LoginThrottle(cache=cache, policy=Policy(failures_per_username=3, window_seconds=1), clock=clock)
        fail(limiter, 2, address=None)
        time.sleep(1.1)  # the cache's own expiry: the window is real time
        assert fail(limiter, 2, address=None) == [[], []]


class NormaliseUsernameTest:
    def test_normalise_username_case_width_and_spaces(self):
        assert {normalise_username(name) for name in ("Straße", "STRASSE", "  straße", "ｓｔｒａｓｓｅ")} == {"strasse"}
