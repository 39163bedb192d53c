"""What a write gives back."""

from __future__ import annotations

from dataclasses import dataclass

from workbooks.domain.errors import Conflict
from workbooks.domain.values import Change

__all__ = ["Applied", "Conflict"]


@dataclass(frozen=True)
class Applied:
    change: Change
    duplicate: bool  # the op id was applied before; ``change`` is the original
    broadcast: bool = True  # False when the channel layer failed after the commit
