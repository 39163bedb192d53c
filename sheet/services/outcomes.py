"""What a write gives back."""

from __future__ import annotations

from dataclasses import dataclass

from sheet.domain.values import Change


class Conflict(Exception):
    """The request contradicts the sheet's state (HTTP 409)."""


@dataclass(frozen=True)
class Applied:
    change: Change
    duplicate: bool  # the op id was applied before; ``change`` is the original
    broadcast: bool = True  # False when the channel layer failed after the commit
