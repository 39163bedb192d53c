"""The one authentication backend: Django's ModelBackend behind the login throttle.

Every password login goes through ``authenticate()`` and so through here (the site's login form, the
admin's, ``Client.login`` in tests, anything added later): a throttled username or address is refused
before the user is looked up or any password hashed.
"""

from __future__ import annotations

import logging
import math

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts import throttle
from accounts.addresses import client_address

logger = logging.getLogger(__name__)


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        """The user, or None for wrong credentials (counted); raises PermissionDenied while throttled.

        An unknown username costs one hashing like a known one (ModelBackend's), so the time taken
        does not tell which usernames exist.
        """
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request) if request is not None else None
        limiter = throttle.current()
        lockout = limiter.lockout(username=username, address=address)
        if lockout is not None:
            log_refused(username=username, address=address, lockout=lockout)
            raise PermissionDenied("too many failed logins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            for locked in limiter.record_failure(username=username, address=address):
                logger.warning(
                    "login throttled: %s %r locked for %d s after too many failed logins (last from %s)",
                    locked.kind,
                    username if locked.kind == "username" else locked.subject,
                    locked.seconds,
                    address or "an unknown address",
                )
        else:
            limiter.record_success(username=username)
        return user

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        return await sync_to_async(self.authenticate)(request, username=username, password=password, **kwargs)


def log_refused(*, username: str, address: str | None, lockout: throttle.Lockout) -> None:
    logger.warning(
        "login refused: too many failed logins for username %r or from %s; %d s left",
        username,
        address or "an unknown address",
        math.ceil(lockout.seconds_left),
    )
