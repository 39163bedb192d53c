"""What a write gives back."""

from __future__ import annotations

from dataclasses import dataclass

from workbooks.domain.errors import Conflict
from workbooks.domain.values import Change

__all__ = ["REMEMBERED", "Applied", "Conflict"]

# Refusals that depend on what the workbook was when the operation came: a resend of the op id gets the
# same answer (see models.Refusal). Not the passing ones (the rate, a server failure), after which a
# client is to send the operation again.
REMEMBERED = frozenset({"invalid", "not_found", "conflict", "too_large", "history_truncated"})


@dataclass(frozen=True)
class Applied:
    change: Change
    duplicate: bool  # the op id was applied before; ``change`` is the original
    broadcast: bool = True  # False when the channel layer failed after the commit
