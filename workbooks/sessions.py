"""A socket lives as long as the login that opened it.

A workbook socket remembers the session that authenticated its handshake. When a login of its user may
have ended (a logout, a new password, the user deactivated or deleted), these signal receivers tell
that user's sockets on every server process (``broadcast.login_changed``, through a group per user
that each process's fan-out hub joins); each socket then checks its own session the way
``django.contrib.auth.get_user`` checks a request's (``login_holds``) and closes with 4401 if it no
longer logs the user in. So a logout closes that browser's sockets only, and a password change
closes every session's but the one Django keeps for the person who changed it (whose key it cycles:
that page's sockets close too, and its page reconnects with the new key).

Only a digest of a session key ever travels through the channel layer (``digest``): a logout is
announced before Django deletes its session, so the sockets of that session close on the digest
alone. The other events are sent once their transaction has committed, so a socket checking its
session sees the new password or the deactivation.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from importlib import import_module

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save, pre_delete, pre_save
from django.utils.crypto import constant_time_compare

from workbooks import broadcast

logger = logging.getLogger(__name__)

LOGIN_FIELDS = ("password", "is_active")  # a save that changes one of these may end logins


def digest(session_key: str | None) -> str | None:
    """What identifies a session to others: a hash of its key, from which the key cannot be had."""
    return hashlib.sha256(session_key.encode()).hexdigest() if session_key else None


def login_holds(*, session_key: str | None, user_id: int) -> bool:
    """Whether the session still logs in this user, checked as ``django.contrib.auth.get_user`` checks
    a request's session but changing nothing: the session exists and has not expired, it names this
    user and a configured backend, the backend still finds the user (ModelBackend: an active one),
    and the session was made with the user's current password (its auth hash matches, under the
    current secret key or a fallback). Without a session (none authenticates a socket today), the
    user must exist and be active."""
    user_model = get_user_model()
    if session_key is None:
        return user_model._default_manager.filter(pk=user_id, is_active=True).exists()
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()  # {} when gone or expired
    backend_path = data.get(BACKEND_SESSION_KEY)
    if data.get(SESSION_KEY) != str(user_id) or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not getattr(user, "is_active", True):
        return False
    if not hasattr(user, "get_session_auth_hash"):
        return True
    session_hash = data.get(HASH_SESSION_KEY)
    known = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return bool(session_hash) and any(constant_time_compare(session_hash, auth_hash) for auth_hash in known)


alogin_holds = database_sync_to_async(login_holds)


def tell_sockets(user_id: int, *, ended_session: str | None = None) -> None:
    """Tells the user's sockets to check their login. A channel layer that fails must not fail the
    logout or the save: the failure is logged, and the sockets stay until their next handshake."""
    try:
        broadcast.login_changed_sync(user_id, ended_session=ended_session)
    except Exception:
        logger.warning("could not tell user %s's sockets that a login of theirs ended", user_id, exc_info=True)


def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is None or user.pk is None:
        return
    session = getattr(request, "session", None)
    tell_sockets(user.pk, ended_session=digest(getattr(session, "session_key", None)))


def on_user_saving(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """Notes whether this save changes the password hash or ``is_active`` (a login's ``last_login``
    update does not), for ``on_user_saved``."""
    instance._tabula_login_changed = False
    if raw or instance._state.adding or (update_fields is not None and not set(LOGIN_FIELDS) & set(update_fields)):
        return
    fields = [name for name in LOGIN_FIELDS if hasattr(instance, name)]
    before = sender._default_manager.filter(pk=instance.pk).values(*fields).first()
    instance._tabula_login_changed = before is not None and any(before[name] != getattr(instance, name) for name in fields)


def on_user_saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    if instance.__dict__.pop("_tabula_login_changed", False):
        transaction.on_commit(functools.partial(tell_sockets, instance.pk))


def on_user_deleting(sender, instance, **kwargs) -> None:
    transaction.on_commit(functools.partial(tell_sockets, instance.pk))


def connect_signals() -> None:
    """Called once, from WorkbookConfig.ready."""
    user_model = get_user_model()
    user_logged_out.connect(on_logged_out, dispatch_uid="tabula.sessions.logged_out")
    pre_save.connect(on_user_saving, sender=user_model, dispatch_uid="tabula.sessions.user_saving")
    post_save.connect(on_user_saved, sender=user_model, dispatch_uid="tabula.sessions.user_saved")
    pre_delete.connect(on_user_deleting, sender=user_model, dispatch_uid="tabula.sessions.user_deleting")
