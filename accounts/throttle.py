"""Login throttling: failed logins counted per username and per client address, in the shared cache.

After ``failures_per_username`` failures for one username, or ``failures_per_address`` from one address,
within ``window_seconds``, logins for that username or from that address are refused without looking at
the password (no hashing: that is what keeps a flood of guesses from eating the CPU) for
``lockout_seconds``. Each further lockout of the same username or address within a day lasts twice as
long as the one before, up to ``max_lockout_seconds``; a successful login clears its username's record,
never its address's (or one account of one's own would let one guess at everybody else's).

The counters live in Django's cache, which in production is Redis, so every worker shares them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import BaseCache, cache

from workbooks import rates

# How long a username or address is remembered as locked before (for the doubling) after its last lockout.
STRIKES_KEPT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Policy:
    failures_per_username: int = 5
    failures_per_address: int = 20
    window_seconds: int = 15 * 60
    lockout_seconds: int = 5 * 60
    max_lockout_seconds: int = 60 * 60

    def lockout_for(self, strikes: int) -> int:
        """The length of the ``strikes``-th lockout in a row (1 for the first)."""
        return min(self.lockout_seconds * 2 ** min(max(strikes - 1, 0), 32), self.max_lockout_seconds)


@dataclass(frozen=True)
class Lockout:
    """Logins refused for this long yet."""

    seconds_left: float

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil(self.seconds_left / 60))


@dataclass(frozen=True)
class Locked:
    """A lockout that a failure just started: who, and for how long."""

    kind: str  # "username" or "address"
    subject: str
    seconds: int


def normalise_username(username: str) -> str:
    """One form for every spelling of a username: "Ada", "ADA" and "ａｄａ" are throttled together."""
    return unicodedata.normalize("NFKC", str(username)).strip().casefold()


def address_subject(address: str) -> str:
    """What an address is counted as: an IPv4 address itself, an IPv6 address its /64 (one host has a whole /64)."""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class LoginThrottle:
    def __init__(self, *, cache: BaseCache, policy: Policy, clock: Callable[[], float] = time.time):
        self.cache = cache
        self.policy = policy
        self.clock = clock

    def lockout(self, *, username: str, address: str | None) -> Lockout | None:
        """The lockout in force for this username or from this address (the longer of the two), or None."""
        keys = [self._key(kind, subject, "lock") for kind, subject, _ in self._subjects(username, address)]
        until = max(self.cache.get_many(keys).values(), default=0)
        left = until - self.clock()
        return Lockout(left) if left > 0 else None

    def record_failure(self, *, username: str, address: str | None) -> list[Locked]:
        """Counts a failed login; returns the lockouts it started."""
        started = []
        for kind, subject, limit in self._subjects(username, address):
            if self._count_failure(kind, subject) >= limit:
                started.append(Locked(kind, subject, self._lock(kind, subject)))
        return started

    def record_success(self, *, username: str) -> None:
        """Forgets the username's failures, lockout and past lockouts: its owner knows the password."""
        self.clear(username=username)

    def clear(self, *, username: str | None = None, address: str | None = None) -> None:
        """Forgets the failures, lockout and past lockouts of a username, an address, or both."""
        subjects = []
        if username is not None:
            subjects.append(("username", normalise_username(username)))
        if address is not None:
            subjects.append(("address", address_subject(address)))
        self.cache.delete_many([self._key(kind, subject, what) for kind, subject in subjects for what in ("failures", "lock", "strikes")])

    def _subjects(self, username: str, address: str | None) -> list[tuple[str, str, int]]:
        subjects = [("username", normalise_username(username), self.policy.failures_per_username)]
        if address is not None:
            subjects.append(("address", address_subject(address), self.policy.failures_per_address))
        return subjects

    def _count_failure(self, kind: str, subject: str) -> int:
        # The window starts at the first failure.
        return rates.count(self._key(kind, subject, "failures"), seconds=self.policy.window_seconds, store=self.cache)

    def _lock(self, kind: str, subject: str) -> int:
        strikes_key = self._key(kind, subject, "strikes")
        strikes = (self.cache.get(strikes_key) or 0) + 1
        seconds = self.policy.lockout_for(strikes)
        self.cache.set(strikes_key, strikes, timeout=STRIKES_KEPT_SECONDS)
        # The value is the end of the lockout by self.clock; the cache's own expiry only tidies up.
        self.cache.set(self._key(kind, subject, "lock"), self.clock() + seconds, timeout=seconds)
        # A fresh count after the lockout: the next one starts after as many failures again.
        self.cache.delete(self._key(kind, subject, "failures"))
        return seconds

    @staticmethod
    def _key(kind: str, subject: str, what: str) -> str:
        # Hashed: usernames are any text (cache keys are not), and Redis need not hold them.
        digest = hashlib.sha256(f"{kind}:{subject}".encode()).hexdigest()[:32]
        return f"tabula:login:{kind}:{digest}:{what}"


def current() -> LoginThrottle:
    """The throttle as this deployment configured it (settings.TABULA_LOGIN_THROTTLE), on the default cache."""
    return LoginThrottle(cache=cache, policy=Policy(**settings.TABULA_LOGIN_THROTTLE))
