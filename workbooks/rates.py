"""Budgets of requests per user and period, shared by every server process (Django's cache: Redis in
production)."""

from __future__ import annotations

from django.core.cache import BaseCache, cache

from workbooks.domain.errors import RateLimited
from workbooks.limits import current as current_limits


def count(key: str, *, seconds: int, store: BaseCache = cache) -> int:
    """Counts one more event under ``key`` in a window of ``seconds`` that starts with its first event
    (incr keeps the key's expiry); returns the count so far, this one included."""
    store.add(key, 0, timeout=seconds)
    try:
        return store.incr(key)
    except ValueError:  # expired between add and incr
        store.set(key, 1, timeout=seconds)
        return 1


def spend(key: str, *, limit: int, seconds: int, refusal: str) -> None:
    """Counts one request against ``key``'s budget of ``limit`` per ``seconds`` (a window that starts
    with its first request); past it raises RateLimited with ``refusal``."""
    if count(f"tabula:rate:{key}", seconds=seconds) > limit:
        raise RateLimited(refusal)


def spend_write(user_id: int) -> None:
    """Counts one HTTP write (an operation, a rename, a share, a new or deleted workbook; the API's or a
    form's) against the user's budget a minute."""
    limit = current_limits().http_ops_per_minute
    spend(f"http-ops:{user_id}", limit=limit, seconds=60, refusal=f"more than {limit} changes a minute; slow down")
