"""Logging in through the site's and the admin's login pages, as a browser does, with the throttle in the way."""

from __future__ import annotations

import html
import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from model_bakery import baker

from accounts import throttle

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password"
WRONG = "a-wrong-guess"
SITE = "/accounts/login/"
ADMIN = "/admin/login/"
THROTTLED = "Too many failed logins for this account or from this address; try again in"


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast) that counts its hashings: each password checked or set is one."""

    algorithm = "counting_md5"
    hashings = 0

    def encode(self, password, salt):
        CountingHasher.hashings += 1
        return super().encode(password, salt)


@pytest.fixture(autouse=True)
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = ["accounts.tests.test_login.CountingHasher"]
    CountingHasher.hashings = 0
    return CountingHasher


@pytest.fixture
def small_limits(settings):
    """Three failures per username, five per address, a one-minute first lockout."""
    settings.TABULA_LOGIN_THROTTLE = {
        "failures_per_username": 3,
        "failures_per_address": 5,
        "window_seconds": 900,
        "lockout_seconds": 60,
        "max_lockout_seconds": 3600,
    }


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The throttle's time, moved by the test."""
    fake = Clock()
    real_current = throttle.current

    def current():
        limiter = real_current()
        limiter.clock = fake
        return limiter

    monkeypatch.setattr(throttle, "current", current)
    return fake


def make_user(username: str, **fields):
    user = baker.make(get_user_model(), username=username, **fields)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def ada():
    return make_user("ada")


@pytest.fixture
def bob():
    return make_user("bob")


def log_in(username: str, password: str, *, path: str = SITE, client: Client | None = None, **request):
    return (client or Client()).post(path, {"username": username, "password": password}, **request)


def logged_in(response) -> bool:
    return response.status_code == 302


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def fail(times: int, username: str = "ada", **request) -> None:
    for _ in range(times):
        assert not logged_in(log_in(username, WRONG, **request))


class SiteLoginTest:
    def test_login_right_password_logged_in_one_hashing(self, ada, counting_hasher):
        counting_hasher.hashings = 0
        response = log_in("ada", PASSWORD)
        assert (response.status_code, response["Location"]) == (302, "/")
        assert counting_hasher.hashings == 1

    def test_login_wrong_password_said_so(self, ada):
        response = log_in("ada", WRONG)
        assert response.status_code == 200
        assert "Your username and password didn't match. Please try again." in page_text(response)
        assert THROTTLED not in page_text(response)

    def test_login_unknown_username_hashes_once_like_a_known_one(self, ada, counting_hasher):
        counting_hasher.hashings = 0
        log_in("nobody", WRONG)
        unknown = counting_hasher.hashings
        counting_hasher.hashings = 0
        log_in("ada", WRONG)
        assert unknown == counting_hasher.hashings == 1

    def test_login_default_limit_five_wrong_then_right_refused_without_hashing(self, ada, counting_hasher):
        fail(5)
        counting_hasher.hashings = 0
        response = log_in("ada", PASSWORD)
        assert response.status_code == 200
        assert f"{THROTTLED} 5 minutes." in page_text(response)
        assert counting_hasher.hashings == 0
        assert "_auth_user_id" not in response.wsgi_request.session

    def test_login_failure_reaching_limit_says_throttled(self, ada, small_limits):
        fail(2)
        response = log_in("ada", WRONG)
        assert f"{THROTTLED} 1 minute." in page_text(response)
        assert "didn't match" not in page_text(response)

    def test_login_throttled_right_and_wrong_password_same_answer(self, ada, small_limits):
        fail(3)
        right, wrong = log_in("ada", PASSWORD), log_in("ada", WRONG)
        assert right.status_code == wrong.status_code == 200
        assert THROTTLED in page_text(right)
        assert page_text(right).count('class="error"') == page_text(wrong).count('class="error"') == 1

    def test_login_throttled_username_other_spelling_refused(self, ada, small_limits):
        fail(3, username="ADA")
        assert THROTTLED in page_text(log_in("ada", PASSWORD))

    def test_login_success_resets_username_count(self, ada, small_limits):
        fail(2)
        assert logged_in(log_in("ada", PASSWORD))
        fail(2)
        assert logged_in(log_in("ada", PASSWORD))

    def test_login_other_username_same_address_allowed_until_address_limit(self, ada, bob, small_limits):
        fail(3, username="ada")
        assert THROTTLED in page_text(log_in("ada", PASSWORD))
        assert logged_in(log_in("bob", PASSWORD))
        fail(1, username="cy")
        assert logged_in(log_in("bob", PASSWORD))
        # The fifth failure from this address: ada's three, cy's, and this one.
        fail(1, username="dee")
        response = log_in("bob", PASSWORD)
        assert THROTTLED in page_text(response)
        assert logged_in(log_in("bob", PASSWORD, REMOTE_ADDR="203.0.113.50"))

    def test_login_lockout_ends_after_cool_off_then_doubles(self, ada, small_limits, clock, settings):
        settings.TABULA_LOGIN_THROTTLE = {**settings.TABULA_LOGIN_THROTTLE, "failures_per_address": 100}
        fail(3)
        clock.now += 59
        assert THROTTLED in page_text(log_in("ada", PASSWORD))
        clock.now += 1
        fail(3)
        assert f"{THROTTLED} 2 minutes." in page_text(log_in("ada", PASSWORD))
        clock.now += 120
        assert logged_in(log_in("ada", PASSWORD))

    def test_login_test_client_login_throttled_too(self, ada, small_limits):
        client = Client()
        for _ in range(3):
            assert not client.login(username="ada", password=WRONG)
        assert not client.login(username="ada", password=PASSWORD)


class AdminLoginTest:
    def test_admin_login_staff_right_password_logged_in(self):
        make_user("root", is_staff=True, is_superuser=True)
        response = Client().post(ADMIN, {"username": "root", "password": PASSWORD, "next": "/admin/"})
        assert (response.status_code, response["Location"]) == (302, "/admin/")

    def test_admin_login_wrong_then_right_refused_without_hashing(self, small_limits, counting_hasher):
        make_user("root", is_staff=True, is_superuser=True)
        for _ in range(3):
            assert not logged_in(log_in("root", WRONG, path=ADMIN))
        counting_hasher.hashings = 0
        response = log_in("root", PASSWORD, path=ADMIN)
        assert response.status_code == 200
        assert THROTTLED in page_text(response)
        assert counting_hasher.hashings == 0

    def test_admin_login_shares_count_with_site_login(self, small_limits):
        make_user("root", is_staff=True, is_superuser=True)
        fail(3, username="root")
        assert THROTTLED in page_text(log_in("root", PASSWORD, path=ADMIN))


class ClientAddressLoginTest:
    def test_login_behind_proxy_each_forwarded_address_counted_apart(self, bob, small_limits):
        proxy = {"REMOTE_ADDR": "127.0.0.1"}
        for name in ("u1", "u2", "u3", "u4", "u5"):
            fail(1, username=name, headers={"X-Forwarded-For": "198.51.100.1"}, **proxy)
        assert THROTTLED in page_text(log_in("bob", PASSWORD, headers={"X-Forwarded-For": "198.51.100.1"}, **proxy))
        assert logged_in(log_in("bob", PASSWORD, headers={"X-Forwarded-For": "198.51.100.2"}, **proxy))

    def test_login_untrusted_peer_spoofed_forwarded_for_ignored(self, bob, small_limits):
        for number, name in enumerate(("u1", "u2", "u3", "u4", "u5")):
            fail(1, username=name, REMOTE_ADDR="203.0.113.7", headers={"X-Forwarded-For": f"198.51.100.{number}"})
        response = log_in("bob", PASSWORD, REMOTE_ADDR="203.0.113.7", headers={"X-Forwarded-For": "198.51.100.99"})
        assert THROTTLED in page_text(response)
        assert logged_in(log_in("bob", PASSWORD, REMOTE_ADDR="203.0.113.8"))


class LoginLogTest:
    def test_failed_login_logged_with_username_and_address_not_password(self, ada, caplog):
        caplog.set_level(logging.WARNING, logger="accounts")
        log_in("ada", WRONG, REMOTE_ADDR="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.1"})
        failed = [r.getMessage() for r in caplog.records if r.name == "accounts.signals"]
        assert failed == ["login failed: username 'ada' from 198.51.100.1"]
        assert WRONG not in caplog.text

    def test_unknown_username_failed_login_logged(self, caplog):
        caplog.set_level(logging.WARNING, logger="accounts")
        log_in("nobody", WRONG, REMOTE_ADDR="203.0.113.7")
        assert "login failed: username 'nobody' from 203.0.113.7" in caplog.text

    def test_lockout_and_throttled_attempt_logged(self, ada, small_limits, caplog):
        caplog.set_level(logging.WARNING, logger="accounts")
        fail(3, REMOTE_ADDR="203.0.113.7")
        assert "login throttled: username 'ada' locked for 60 s after too many failed logins (last from 203.0.113.7)" in caplog.text
        caplog.clear()
        log_in("ada", PASSWORD, REMOTE_ADDR="203.0.113.7")
        refused = [r for r in caplog.records if r.getMessage().startswith("login refused")]
        assert len(refused) == 1
        assert refused[0].levelno == logging.WARNING
        assert "'ada'" in refused[0].getMessage() and "203.0.113.7" in refused[0].getMessage()
        assert PASSWORD not in caplog.text
