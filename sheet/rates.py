"""Budgets of requests per user and period, shared by every server process (Django's cache: Redis in
production)."""

from __future__ import annotations

from django.core.cache import cache

from sheet.domain.errors import RateLimited


def spend(key: str, *, limit: int, seconds: int, refusal: str) -> None:
    """Counts one request against ``key``'s budget of ``limit`` per ``seconds`` (a window that starts
    with its first request); past it raises RateLimited with ``refusal``."""
    key = f"tabula:rate:{key}"
    cache.add(key, 0, timeout=seconds)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds)
        used = 1
    if used > limit:
        raise RateLimited(refusal)
