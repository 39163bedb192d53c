"""How a formula cell is kept: in its row's values (see models.Row) a literal is itself, and a formula
cell is ``{"f": parts, "v": computed}``, its formula as the wire's ``parts`` (references by id) and the
value it computed at the latest revision. No literal is a JSON object, so a cell's kind is its type.

Computed values go on the wire as they are, but for errors: ``{"error": code, "message"?}``.
"""

from __future__ import annotations

from .formula import Formula, from_wire
from .values import XlError


def is_formula(slot) -> bool:
    return type(slot) is dict


def slot(formula: Formula, value) -> dict:
    return {"f": formula.to_wire(), "v": to_wire(value)}


def to_wire(value):
    return value.to_wire() if isinstance(value, XlError) else value


def from_wire_value(value):
    if type(value) is dict:
        return XlError(str(value.get("error", "#VALUE!")), value.get("message"))
    return value


def content(slot):
    """What the cell holds, for the engine: its literal, or its Formula."""
    return from_wire(slot["f"]) if type(slot) is dict else slot


def shown(slot):
    """Its computed value as the wire carries it: a literal is itself."""
    return slot["v"] if type(slot) is dict else slot
