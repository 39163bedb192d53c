"""Excel's A1 formula syntax: text to tokens (with where each starts) and tokens to a tree.

Written here rather than taken from a library: a refused formula must say where it stopped parsing,
references must come out split into sheet, rows and columns (so they can be bound to ids), and the
same parser must read a stored formula, whose references are ids, not text (``Marker``). The
tokenizers we looked at (openpyxl's, for one) give neither positions nor parts of references.

The tree is made of tuples, shared by every formula of the same shape (see ``compile_parts``):

    ("num", float) ("str", text) ("bool", b) ("err", code[, why]) ("ref", i)   i: the formula's i-th reference
    ("call", NAME, (args...)) ("neg", x) ("pos", x) ("pct", x) ("op", symbol, a, b) ("arr", ((...), ...))
    ("missing",)  an argument left empty, as in IF(A1,,2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Invalid

ERROR_CODES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")
MAX_DEPTH = 100  # nesting of parentheses and calls, as deep as anyone writes (Excel allows 64 calls)

MARKER = "\x00"  # brackets a stored reference's index; no text of a formula can hold it (the contract)


@dataclass(frozen=True)
class Token:
    kind: str  # num str bool err ref marker name func ( ) , ; { } op
    text: str
    at: int  # where it starts, 0-based, counting the leading "="


# A reference's text: an optional sheet (quoted with '' for ', or a plain name), then a cell, a cell
# range, a column range or a row range.
_SHEET = r"(?:'(?P<qsheet>(?:[^']|'')+)'|(?P<sheet>[A-Za-z_][\w.]*))!"
_CELL = r"\$?[A-Za-z]{1,3}\$?\d{1,7}"
_REF = re.compile(rf"(?:{_SHEET})?(?P<ref>{_CELL}(?::{_CELL})?|\$?[A-Za-z]{{1,3}}:\$?[A-Za-z]{{1,3}}|\$?\d{{1,7}}:\$?\d{{1,7}})(?![\w.(!])")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_\\][\w.]*")
_OPERATORS = ("<>", "<=", ">=", "+", "-", "*", "/", "^", "&", "=", "<", ">", "%", ":")


def tokenize(text: str) -> list[Token]:
    """The tokens of a formula (``text`` starts with "="), whitespace dropped."""
    tokens, i, n = [], 1, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == MARKER:
            end = text.index(MARKER, i + 1)
            tokens.append(Token("marker", text[i + 1 : end], i))
            i = end + 1
        elif c == '"':
            j, parts = i + 1, []
            while True:
                end = text.find('"', j)
                if end < 0:
                    raise Invalid(f"formula: the text starting at character {i + 1} has no closing quote")
                parts.append(text[j:end])
                if text.startswith('"', end + 1):
                    parts.append('"')
                    j = end + 2
                else:
                    break
            tokens.append(Token("str", "".join(parts), i))
            i = end + 1
        elif c == "#":
            code = next((e for e in ERROR_CODES if text.upper().startswith(e, i)), None)
            if code is None:
                raise Invalid(f"formula: unknown error value at character {i + 1}")
            tokens.append(Token("err", code, i))
            i += len(code)
        elif m := _REF.match(text, i):
            tokens.append(Token("ref", m.group(0), i))
            i = m.end()
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            tokens.append(Token("num", m.group(0), i))
            i = m.end()
        elif m := _NAME.match(text, i):
            name = m.group(0)
            j = m.end()
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "(":
                tokens.append(Token("func", name.upper(), i))
                i = j + 1
            else:
                upper = name.upper()
                tokens.append(Token("bool" if upper in ("TRUE", "FALSE") else "name", upper if upper in ("TRUE", "FALSE") else name, i))
                i = m.end()
        elif c in "(),;{}":
            tokens.append(Token(c, c, i))
            i += 1
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise Invalid(f"formula: unexpected “{c}” at character {i + 1}")
            tokens.append(Token("op", op, i))
            i += len(op)
    return tokens


@dataclass(frozen=True)
class RefText:
    """A reference as typed: its sheet's name (None: the formula's own sheet) and its A1 text."""

    sheet: str | None
    a1: str


def parse_ref(text: str) -> RefText:
    m = _REF.fullmatch(text)
    sheet = m.group("qsheet").replace("''", "'") if m.group("qsheet") is not None else m.group("sheet")
    return RefText(sheet, m.group("ref"))


# Binary operators: symbol -> (left binding power, right binding power). Excel: comparison < & < + - <
# * / < ^ (left-associative, as Excel: 2^3^2 is 64) < negation < % < the range operator.
_BINARY = {
    "=": (10, 11), "<>": (10, 11), "<": (10, 11), ">": (10, 11), "<=": (10, 11), ">=": (10, 11),
    "&": (20, 21), "+": (30, 31), "-": (30, 31), "*": (40, 41), "/": (40, 41), "^": (50, 51),
}  # fmt: skip
_PREFIX_POWER = 60
_PERCENT_POWER = 70


class Parser:
    """A Pratt parser over the tokens. ``reference(token)`` turns a ``ref`` or ``marker`` token into
    its node: ("ref", i) for the formula's i-th reference (the caller keeps the references)."""

    def __init__(self, text: str, reference):
        self.text, self.tokens, self.i, self.reference, self.depth = text, tokenize(text), 0, reference, 0

    def parse(self):
        if not self.tokens:
            raise Invalid("formula: nothing after “=”")
        tree = self.expression(0)
        if self.i < len(self.tokens):
            self.fail(self.tokens[self.i])
        return tree

    def fail(self, token: Token | None, expected: str = ""):
        if token is None:
            raise Invalid(f"formula: it ends too early{', expected ' + expected if expected else ''}")
        raise Invalid(f"formula: unexpected “{token.text}” at character {token.at + 1}{', expected ' + expected if expected else ''}")

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token | None:
        token = self.peek()
        self.i += 1
        return token

    def expect(self, kind: str) -> Token:
        token = self.take()
        if token is None or token.kind != kind:
            self.fail(token, f"“{kind}”")
        return token

    def expression(self, power: int):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Invalid(f"formula: nested more than {MAX_DEPTH} deep")
        left = self.prefix()
        while (token := self.peek()) is not None and token.kind == "op":
            if token.text == "%":
                if _PERCENT_POWER < power:
                    break
                self.i += 1
                left = ("pct", left)
                continue
            if token.text == ":":
                self.fail(token)
            left_power, right_power = _BINARY[token.text]
            if left_power < power:
                break
            self.i += 1
            left = ("op", token.text, left, self.expression(right_power))
        self.depth -= 1
        return left

    def prefix(self):
        token = self.take()
        if token is None:
            self.fail(None, "a value")
        kind = token.kind
        if kind == "num":
            return ("num", float(token.text))
        if kind == "str":
            return ("str", token.text)
        if kind == "bool":
            return ("bool", token.text == "TRUE")
        if kind == "err":
            return ("err", token.text)
        if kind in ("ref", "marker"):
            return self.reference(token)
        if kind == "name":
            return ("name", token.text)
        if kind == "op" and token.text in ("-", "+"):
            operand = self.expression(_PREFIX_POWER)
            return ("neg" if token.text == "-" else "pos", operand)
        if kind == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if kind == "func":
            return self.call(token)
        if kind == "{":
            return self.array()
        self.fail(token, "a value")

    def call(self, token: Token):
        args = []
        if (following := self.peek()) is not None and following.kind == ")":
            self.i += 1
            return ("call", token.text, ())
        while True:
            following = self.peek()
            if following is not None and following.kind in (",", ")"):
                args.append(("missing",))
            else:
                self.depth += 1
                args.append(self.expression(0))
                self.depth -= 1
            separator = self.take()
            if separator is None:
                self.fail(None, f"“)” to close {token.text}( at character {token.at + 1}")
            if separator.kind == ")":
                return ("call", token.text, tuple(args))
            if separator.kind != ",":
                self.fail(separator, "“,” or “)”")

    def array(self):
        rows, row = [], []
        while True:
            token = self.take()
            sign = 1.0
            if token is not None and token.kind == "op" and token.text == "-":
                sign, token = -1.0, self.take()
            if token is None or token.kind not in ("num", "str", "bool", "err"):
                self.fail(token, "a constant in the array")
            if token.kind == "num":
                row.append(sign * float(token.text))
            elif sign < 0:
                self.fail(token, "a number after “-”")
            else:
                row.append(token.text if token.kind == "str" else token.text == "TRUE" if token.kind == "bool" else ("err", token.text))
            separator = self.take()
            if separator is None:
                self.fail(None, "“}”")
            if separator.kind in (";", "}"):
                rows.append(tuple(row))
                if rows[0] and len(row) != len(rows[0]):
                    raise Invalid(f"formula: the array's rows differ in length at character {separator.at + 1}")
                row = []
                if separator.kind == "}":
                    return ("arr", tuple(rows))
            elif separator.kind != ",":
                self.fail(separator, "“,”, “;” or “}”")
