"""A formula as Tabula keeps it: ``parts``, text pieces and references by id (the contract's wire
form), read from the A1 text a user typed and rendered back to A1 text at any revision.

Compiling parts gives the tree the evaluator walks. Formulas of one shape (the same text pieces, the
same kinds of reference: ``=A1*2`` filled down a column) share one tree, compiled once.
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import Invalid
from . import references
from .references import CellRef, Layout, Reference, Unresolved
from .syntax import MARKER, Parser, Token, parse_ref

Part = str | Reference


class Formula:
    """A formula by its ``parts``; ``refs`` (its references) and ``shape`` (its text pieces, None for
    each reference: formulas of one shape share one tree) are worked out once, when it is made. A
    plain class with slots, not a frozen dataclass: a workbook's 100,000 formulas load faster."""

    __slots__ = ("_wire", "parts", "refs", "shape")

    def __init__(self, parts: tuple[Part, ...], wire: list | None = None):
        self.parts = parts
        self._wire = wire  # its parts as the wire carries them, once asked (never to be changed)
        self.refs: tuple[Reference, ...] = tuple(p for p in parts if not isinstance(p, str))
        self.shape: tuple[str | None, ...] = tuple(p if isinstance(p, str) else None for p in parts)

    def __eq__(self, other) -> bool:
        return isinstance(other, Formula) and other.parts == self.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __repr__(self) -> str:
        return f"Formula({self.parts!r})"

    def text(self, own_sheet: int, layout: Layout) -> str:
        """The A1 text (with its "=") against ``layout``."""
        return "".join(p if isinstance(p, str) else references.render(p, own_sheet, layout) for p in self.parts)

    def tree(self):
        """The evaluator's tree: ("ref", i) names ``refs[i]``."""
        return _compiled(self.shape)

    def to_wire(self) -> list:
        if self._wire is None:
            self._wire = [p if isinstance(p, str) else references.to_wire(p) for p in self.parts]
        return self._wire


def read(text: str, own_sheet: int, layout: Layout) -> Formula:
    """The formula a user typed (A1 text starting with "="), its references bound to ids by ``layout``.

    Text that does not parse is ``Invalid``, saying where. A reference to a sheet that does not exist
    stays as typed and evaluates to #REF!; one beyond its sheet's last row or column becomes #REF!."""
    if not text.startswith("="):
        raise Invalid("a formula starts with “=”")
    if MARKER in text:
        raise Invalid("formula: U+0000 is not allowed")
    found: list[tuple[Token, Reference | None]] = []

    def reference(token: Token):
        if token.kind == "marker":
            raise Invalid(f"formula: unexpected character at {token.at + 1}")
        try:
            found.append((token, references.resolve(parse_ref(token.text), own_sheet, layout)))
        except Unresolved:
            found.append((token, None))
        return ("ref", 0)  # the tree is compiled again from the parts

    Parser(text, reference).parse()
    parts: list[Part] = []
    at = 0
    for token, ref in found:
        end = token.at + len(token.text)
        if ref is None:
            if parse_ref(token.text).sheet is not None and layout.sheet_named(parse_ref(token.text).sheet) is None:
                continue  # stays text: an unknown sheet's name, kept as typed
            _add_text(parts, text[at : token.at] + references.REF_ERROR)
        else:
            _add_text(parts, text[at : token.at])
            parts.append(ref)
        at = end
    _add_text(parts, text[at:])
    return Formula(tuple(parts))


def _add_text(parts: list[Part], text: str) -> None:
    if not text:
        return
    if parts and isinstance(parts[-1], str):
        parts[-1] += text
    else:
        parts.append(text)


@lru_cache(maxsize=4096)
def _compiled(shape: tuple[str | None, ...]):
    pieces, index = [], 0
    for piece in shape:
        if piece is None:
            pieces.append(f"{MARKER}{index}{MARKER}")
            index += 1
        else:
            pieces.append(piece)

    def reference(token: Token):
        if token.kind == "marker":
            return ("ref", int(token.text))
        ref = parse_ref(token.text)  # kept as typed: its sheet did not exist
        return ("err", references.REF_ERROR, f"unknown sheet “{ref.sheet}”" if ref.sheet is not None else None)

    return Parser("".join(pieces), reference).parse()


def from_wire(parts: list) -> Formula:
    """Parts as the wire (or the store) carries them; anything malformed is ``Invalid``."""
    if not isinstance(parts, list) or not parts or not isinstance(parts[0], str) or not parts[0].startswith("="):
        raise Invalid("formula parts: a list whose first item is text starting with “=”")
    out: list[Part] = []
    for part in parts:
        if isinstance(part, str):
            if MARKER in part:
                raise Invalid("formula parts: U+0000 is not allowed")
            out.append(part)
        elif isinstance(part, dict):
            try:
                ref = references.from_wire(part)
            except (KeyError, TypeError, IndexError) as exc:
                raise Invalid(f"formula parts: a malformed reference {part!r}") from exc
            _check_ids(ref)
            out.append(ref)
        else:
            raise Invalid("formula parts: each item is text or a reference")
    formula = Formula(tuple(out))
    formula.tree()  # parses, or Invalid
    return formula


def from_stored(parts: list) -> Formula:
    """Parts as the write path stored them (see stored.py), checked when they were written: read
    without checking again (loading a workbook's 100,000 formulas)."""
    return Formula(tuple(part if isinstance(part, str) else references.from_wire(part) for part in parts), wire=parts)


def _check_ids(ref: Reference) -> None:
    ids = [ref.sheet] if ref.sheet is not None else []
    if isinstance(ref, CellRef):
        ids += [ref.row, ref.col]
    else:
        ids += [*(ref.rows or ()), *(ref.cols or ())]
        if ref.rows is None and ref.cols is None:
            raise Invalid("formula parts: a range needs its rows or its columns")
    if not all(type(i) is int and i > 0 for i in ids):
        raise Invalid("formula parts: ids are positive integers")
