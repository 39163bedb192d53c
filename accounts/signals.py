"""Every failed login is logged, with the username and the client's address (never the password)."""

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from accounts.addresses import client_address

logger = logging.getLogger(__name__)


@receiver(user_login_failed)
def log_failed_login(sender, credentials, request=None, **kwargs):
    username = credentials.get(get_user_model().USERNAME_FIELD, credentials.get("username"))
    address = client_address(request) if request is not None else None
    logger.warning("login failed: username %r from %s", username, address or "an unknown address")
