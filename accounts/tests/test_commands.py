"""manage.py clear_login_throttle: a locked-out username or address logs in again at once."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.test_login import PASSWORD, THROTTLED, fail, log_in, logged_in, make_user, page_text

pytestmark = pytest.mark.django_db


def run(**options) -> str:
    out = StringIO()
    call_command("clear_login_throttle", stdout=out, **options)
    return out.getvalue()


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.TABULA_LOGIN_THROTTLE = {**settings.TABULA_LOGIN_THROTTLE, "failures_per_username": 3, "failures_per_address": 5}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class ClearLoginThrottleTest:
    def test_clear_login_throttle_username_logs_in_again(self):
        make_user("ada")
        fail(3)
        assert THROTTLED in page_text(log_in("ada", PASSWORD))
        assert run(username="ADA") == "Cleared the failed logins of username ADA.\n"
        assert logged_in(log_in("ada", PASSWORD))

    def test_clear_login_throttle_address_logs_in_again(self):
        make_user("bob")
        for name in ("u1", "u2", "u3", "u4", "u5"):
            fail(1, username=name, REMOTE_ADDR="203.0.113.7")
        assert THROTTLED in page_text(log_in("bob", PASSWORD, REMOTE_ADDR="203.0.113.7"))
        assert run(address="203.0.113.7") == "Cleared the failed logins of address 203.0.113.7.\n"
        assert logged_in(log_in("bob", PASSWORD, REMOTE_ADDR="203.0.113.7"))

    @pytest.mark.parametrize(("options", "error"), [({}, "name a --username"), ({"address": "nginx"}, "is not an IP address")])
    def test_clear_login_throttle_nothing_or_bad_address_refused(self, options, error):
        with pytest.raises(CommandError, match=error):
            run(**options)
