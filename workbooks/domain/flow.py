"""Per-connection flow rules: ordering of broadcast changes, and the operation rate limit."""

from __future__ import annotations

from collections.abc import Callable


class ChangeSequencer:
    """Releases a socket's changes in revision order with no gaps.

    Broadcasts from several server processes can arrive out of order, and a channel layer may lose
    one. ``offer`` holds back a change that does not follow the last one sent and reports the gap, so
    the caller can fill it from the change log (every revision below a broadcast one is committed).
    """

    def __init__(self, rev: int, *, max_held: int = 1000):
        self.rev = rev
        self.max_held = max_held
        self.held: dict[int, str] = {}

    def offer(self, rev: int, text: str) -> list[str]:
        """Returns the messages now ready to send, in order (possibly none)."""
        if rev <= self.rev:
            return []
        self.held[rev] = text
        ready = []
        while self.rev + 1 in self.held:
            self.rev += 1
            ready.append(self.held.pop(self.rev))
        return ready

    @property
    def has_gap(self) -> bool:
        return bool(self.held)

    @property
    def overflowing(self) -> bool:
        return len(self.held) > self.max_held

    def skip_to(self, rev: int) -> None:
        """Forgets everything up to ``rev`` (the client was sent those some other way)."""
        if rev > self.rev:
            self.rev = rev
        self.held = {r: t for r, t in self.held.items() if r > self.rev}


class TokenBucket:
    """Allows a sustained ``rate`` per second with bursts up to ``burst``; the clock is injected."""

    def __init__(self, *, rate: float, burst: float, clock: Callable[[], float]):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SendBacklog:
    """How far a socket's client is behind reading what the server sends it.

    The server's transport pauses this (it is registered there as a streaming producer) when its write
    buffer is full, and resumes it once the client has read everything. What is sent while it is paused
    counts against ``limit``: past it, the client is not keeping up, and rather than buffer for it
    without bound the socket stops sending it broadcasts and tells it to reload.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.paused = False
        self.queued = 0

    def pauseProducing(self) -> None:  # noqa: N802 (the transport calls it by this name)
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False
        self.queued = 0

    def stopProducing(self) -> None:  # noqa: N802
        self.paused = True

    def sending(self, size: int) -> None:
        if self.paused:
            self.queued += size

    @property
    def overrun(self) -> bool:
        return self.queued > self.limit
