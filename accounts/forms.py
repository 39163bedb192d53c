"""The login forms of the site and of the admin, which say when logins are throttled.

The backend refuses a throttled login anyway; the forms ask the throttle first so that the person is
told why, and told nothing about whether the password was right.
"""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from accounts import throttle
from accounts.addresses import client_address
from accounts.backends import log_refused


def throttled_error(lockout: throttle.Lockout) -> ValidationError:
    minutes = lockout.minutes_left
    return ValidationError(
        "Too many failed logins for this account or from this address; try again in %(minutes)d %(unit)s.",
        code="throttled",
        params={"minutes": minutes, "unit": "minute" if minutes == 1 else "minutes"},
    )


class ThrottledLoginMixin:
    """For an AuthenticationForm: refuses while throttled, and says so once a failure starts a lockout."""

    @sensitive_variables()
    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        address = client_address(self.request) if self.request is not None else None
        limiter = throttle.current()
        lockout = limiter.lockout(username=username, address=address)
        if lockout is not None:
            log_refused(username=username, address=address, lockout=lockout)
            raise throttled_error(lockout)
        try:
            return super().clean()
        except ValidationError:
            # A wrong password that reached a limit (or a lockout that another attempt began meanwhile).
            if self.user_cache is None and (lockout := limiter.lockout(username=username, address=address)) is not None:
                raise throttled_error(lockout) from None
            raise


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password didn't match. Please try again.",
    }


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
