"""The values a formula computes with, and Excel's rules for turning one kind into another.

A value is ``None`` (blank), a ``float``, a ``str``, a ``bool`` or an ``XlError``. Python's bool is an
int: every test for a number checks ``bool`` first (``is_number``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal

MAX_TEXT = 10_000  # characters of any text a formula computes (the contract's cell value limit)


@dataclass(frozen=True)
class XlError(Exception):
    code: str
    message: str | None = None

    def to_wire(self) -> dict:
        return {"error": self.code} if self.message is None else {"error": self.code, "message": self.message}


DIV0 = XlError("#DIV/0!")
VALUE = XlError("#VALUE!")
REF = XlError("#REF!")
NAME = XlError("#NAME?")
NA = XlError("#N/A")
NUM = XlError("#NUM!")
NULL = XlError("#NULL!")
CIRCULAR = XlError("#REF!", "circular reference")


def is_number(value) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)


def number(value: float) -> float | XlError:
    """A result as Excel keeps it: no infinities or NaN (#NUM!), no negative zero."""
    if math.isnan(value) or math.isinf(value):
        return NUM
    return value + 0.0


def text_result(text: str) -> str | XlError:
    if len(text) > MAX_TEXT:
        return XlError("#VALUE!", f"text longer than {MAX_TEXT:,} characters")
    return text


_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: str) -> float | None:
    """A number in text as Excel reads it (en-US): "12", " -1.5e3 ", "1,200", "$12.50", "50%", "(3)",
    a date "2026-12-02" or "12/2/2026", a time "13:30" or "1:30 PM"; None when it is none of these."""
    s = text.strip()
    if not s:
        return None
    negative = s.startswith("(") and s.endswith(")")
    if negative:
        s = s[1:-1].strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].strip()
    sign = ""
    if s[:1] in "+-":
        sign, s = s[0], s[1:].strip()
    if s.startswith("$"):
        s = s[1:].strip()
    if _NUMBER_TEXT.fullmatch(s):
        value = float(s.replace(",", ""))
        if sign == "-":
            value = -value
    elif not (sign or percent) and (date := parse_date(s)) is not None:
        value = date
    else:
        return None
    if math.isinf(value):
        return None
    if negative:
        value = -value
    return value / 100 if percent else value


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2,4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*([AaPp][Mm])?")


def parse_date(text: str) -> float | None:
    """A date, a time, or a date and a time, as a serial number; None when the text is none of them."""
    date_part, _, time_part = text.strip().partition(" ")
    serial = 0.0
    if m := _ISO_DATE.fullmatch(date_part) or _US_DATE.fullmatch(date_part):
        if m.re is _ISO_DATE:
            year, month, day = int(m[1]), int(m[2]), int(m[3])
        else:
            month, day, year = int(m[1]), int(m[2]), int(m[3])
            year += 2000 if year < 30 else 1900 if year < 100 else 0
        try:
            serial = float(date_serial(dt.date(year, month, day)))
        except ValueError:
            return None
        if not time_part:
            return serial
        text = time_part
    elif time_part and not _TIME.fullmatch(text.strip()):
        return None
    m = _TIME.fullmatch(text.strip())
    if m is None:
        return None
    hours, minutes, seconds = int(m[1]), int(m[2]), float(m[3] or 0)
    if m[4]:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if m[4].upper() == "PM" else 0)
    if minutes > 59 or seconds >= 60 or hours > 23 and m[4]:
        return None
    return serial + (hours * 3600 + minutes * 60 + seconds) / 86400


# Dates are serial numbers in Excel's 1900 system: 1 is 1900-01-01, and 60 is 1900-02-29, a day that
# never was (Lotus 1-2-3's bug, kept by Excel): serials from 61 on count from 1899-12-30.
_EPOCH = dt.date(1899, 12, 30)


def date_serial(date: dt.date) -> int:
    days = (date - _EPOCH).days
    return days if days >= 61 else days - 1


def serial_date(serial: float) -> dt.date | XlError:
    """The date of a serial number (its whole part); serial 60 is read as 1900-02-28, 0 as 1900-01-00 is
    not a date (#NUM! below 0, or past 9999-12-31)."""
    day = math.floor(serial)
    if day < 0 or day > 2_958_465:
        return NUM
    if day == 0:
        return dt.date(1899, 12, 31)  # Excel shows 1900-01-00; what YEAR and MONTH give for it is 1900, 1
    return _EPOCH + dt.timedelta(days=day if day >= 61 else day + 1 if day < 60 else 60)


def date_parts(serial: float) -> tuple[int, int, int] | XlError:
    """(year, month, day) as Excel gives them, serial 60 being 1900-02-29 and 0 being 1900-01-00."""
    day = math.floor(serial)
    if day == 60:
        return (1900, 2, 29)
    if day == 0:
        return (1900, 1, 0)
    date = serial_date(serial)
    return date if isinstance(date, XlError) else (date.year, date.month, date.day)


def to_number(value) -> float | XlError:
    """A scalar as a number: blank 0, booleans 1 and 0, text read as a number (else #VALUE!)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float | int):
        return float(value)
    if isinstance(value, str):
        parsed = parse_number(value)
        return VALUE if parsed is None else parsed
    return value  # an error


def to_text(value) -> str | XlError:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | int):
        return general(float(value))
    return value


def to_bool(value) -> bool | XlError:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, float | int):
        return value != 0
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper in ("TRUE", "FALSE"):
            return upper == "TRUE"
        return VALUE
    return value


def general(value: float) -> str:
    """A number as Excel's General format writes it into text: at most 15 significant digits (so 0.1+0.2
    is 0.3), integers without a point, scientific notation below 1E-09 and from 1E+21 on."""
    text = f"{value + 0.0:.15g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if -10 < int(exponent) < 21:
        return format(Decimal(text), "f")
    return f"{mantissa.upper()}E{'+' if int(exponent) >= 0 else '-'}{abs(int(exponent)):02d}"


def wire_value(value):
    """A computed value as the wire carries it: integral numbers as integers, errors as objects."""
    if isinstance(value, XlError):
        return value.to_wire()
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 - 1:
        return int(value)
    return value


def from_wire(value):
    """A stored or sent computed value back to the evaluator's kinds."""
    if isinstance(value, dict):
        return XlError(value["error"], value.get("message"))
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# Comparison as Excel orders kinds: numbers < text < booleans; text without regard to case.
_RANK = {float: 0, int: 0, str: 1, bool: 2}


def compare(a, b) -> int:
    """-1, 0 or 1 for two scalars (not errors); a blank is 0, "" or FALSE to what it meets."""
    if a is None:
        a = "" if isinstance(b, str) else False if isinstance(b, bool) else 0.0
    if b is None:
        b = "" if isinstance(a, str) else False if isinstance(a, bool) else 0.0
    ra, rb = _RANK[type(a)], _RANK[type(b)]
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 1:
        a, b = a.lower(), b.lower()
    return (a > b) - (a < b)
