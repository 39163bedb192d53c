"""Excel number format codes applied to a value, for the TEXT function: sections (positive; negative;
zero; text), digit placeholders 0 # ?, the decimal point, thousands separators and scaling commas,
percent, scientific notation, quoted and escaped literals, and dates and times (y m d h s AM/PM,
elapsed [h] [m] [s]). Colours and conditions in brackets are read and ignored. en-US separators.
"""

from __future__ import annotations

import math
import re

from .values import XlError, date_parts, general, is_number, serial_date, to_text

_DATE_CODE = re.compile(r"(\[[hms]+\])|(y+|m+|d+|h+|s+|am/pm|a/p)", re.I)
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def format_value(value, code: str):
    if isinstance(value, XlError):
        return value
    sections = _split(code)
    if isinstance(value, str) or isinstance(value, bool) or value is None:
        shown = to_text(value)
        text_section = sections[3] if len(sections) > 3 else next((s for s in sections if "@" in s), None)
        return _literal(text_section, shown) if text_section is not None else shown
    if not is_number(value):
        return to_text(value)
    section, value = _pick(sections, value)
    section = re.sub(r"\[(?:[a-z]+\d*|[<>=]+-?[\d.]+|\$[^\]]*)\]", "", section, flags=re.I)  # colours, conditions, locales
    if section.strip().lower() in ("general", ""):
        return general(value)
    if _is_date(section):
        return _date(section, value)
    return _number(section, value)


def _split(code: str) -> list[str]:
    sections, current, quoted, i = [], "", False, 0
    while i < len(code):
        ch = code[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and not quoted and i + 1 < len(code):
            current += code[i : i + 2]
            i += 2
            continue
        elif ch == ";" and not quoted:
            sections.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    sections.append(current)
    return sections


def _pick(sections: list[str], value: float) -> tuple[str, float]:
    if value < 0 and len(sections) > 1:
        return sections[1], -value  # the negative section writes its own sign, if any
    if value == 0 and len(sections) > 2:
        return sections[2], value
    return sections[0], value


def _literal(section: str, text: str) -> str:
    return "".join(text if (kind, piece) == ("code", "@") else piece for kind, piece in _tokens(section))


def _tokens(section: str) -> list[tuple[str, str]]:
    """The section's pieces: quoted and escaped literals as their text, everything else character by character."""
    out, i = [], 0
    while i < len(section):
        ch = section[i]
        if ch == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            out.append(("lit", section[i + 1 : end]))
            i = end + 1
        elif ch == "\\" and i + 1 < len(section):
            out.append(("lit", section[i + 1]))
            i += 2
        elif ch in "_*" and i + 1 < len(section):
            out.append(("lit", " " if ch == "_" else ""))
            i += 2
        else:
            out.append(("code", ch))
            i += 1
    return out


def _is_date(section: str) -> bool:
    return re.search(r"[ymdhs]", "".join(text for kind, text in _tokens(section) if kind == "code"), re.I) is not None


def _date(section: str, value: float) -> str:
    if value < 0:
        return "#" * 10
    parts = date_parts(value)
    if isinstance(parts, XlError):
        return "#" * 10
    year, month, day = parts
    seconds_total = round((value - math.floor(value)) * 86400)
    hour, minute, second = seconds_total // 3600 % 24, seconds_total // 60 % 60, seconds_total % 60
    codes = "".join(f"\x01{text}\x02" if kind == "lit" else text for kind, text in _tokens(section))
    twelve = re.search(r"am/pm|a/p", codes, re.I) is not None
    pieces = _DATE_CODE.split(codes)
    out, previous = [], ""
    tokens = [p for p in pieces if p]
    for index, token in enumerate(tokens):
        lower = token.lower()
        if lower.startswith("[") and lower.endswith("]"):
            unit = lower[1]
            total = {"h": value * 24, "m": value * 1440, "s": value * 86400}[unit]
            out.append(str(math.floor(total + 1e-9)))
        elif lower[0] == "y":
            out.append(f"{year % 100:02d}" if len(lower) <= 2 else str(year))
        elif lower[0] == "m" and not lower.startswith("am"):
            following = next((t.lower() for t in tokens[index + 1 :] if _DATE_CODE.fullmatch(t)), "")
            if previous.startswith("h") or following.startswith("s"):
                out.append(f"{minute:02d}" if len(lower) >= 2 else str(minute))
            elif len(lower) == 1:
                out.append(str(month))
            elif len(lower) == 2:
                out.append(f"{month:02d}")
            elif len(lower) == 3:
                out.append(_MONTHS[month - 1][:3])
            elif len(lower) == 5:
                out.append(_MONTHS[month - 1][0])
            else:
                out.append(_MONTHS[month - 1])
        elif lower[0] == "d":
            weekday = _DAYS[serial_date(value).weekday()] if not isinstance(serial_date(value), XlError) else ""
            out.append(str(day) if len(lower) == 1 else f"{day:02d}" if len(lower) == 2 else weekday[:3] if len(lower) == 3 else weekday)
        elif lower[0] == "h":
            shown = (hour % 12 or 12) if twelve else hour
            out.append(f"{shown:02d}" if len(lower) >= 2 else str(shown))
        elif lower[0] == "s":
            out.append(f"{second:02d}" if len(lower) >= 2 else str(second))
        elif lower in ("am/pm", "a/p"):
            marker = "AM" if hour < 12 else "PM"
            out.append(marker if lower == "am/pm" else marker[0])
        else:
            out.append(token)
            continue
        previous = lower
    return "".join(out).replace("\x01", "").replace("\x02", "")


def _number(section: str, value: float) -> str:
    tokens = _tokens(section)
    codes = [text if kind == "code" else None for kind, text in tokens]
    percent = sum(1 for c in codes if c == "%")
    value = value * 100**percent
    code_text = "".join(c or "" for c in codes)
    exponent_at = re.search(r"[eE][+-]", code_text)
    # Where the digits go: the code's characters up to the decimal point are the integer part.
    integer_part, decimals = [], []
    in_decimals = False
    has_thousands = False
    scaling = 0
    for index, (kind, text) in enumerate(tokens):
        if kind == "code" and text in "eE":
            break  # the exponent's digits are its own
        if kind == "code" and text == "." and not in_decimals:
            in_decimals = True
        elif kind == "code" and text == ",":
            following = [t for k, t in tokens[index + 1 :] if k == "code"]
            if following and following[0] in "0#?" and not in_decimals:
                has_thousands = True
            elif not following or following[0] not in "0#?":
                scaling += 1
        elif kind == "code" and text in "0#?":
            (decimals if in_decimals else integer_part).append(text)
    value = value / 1000**scaling
    negative = value < 0
    magnitude = abs(value)
    if exponent_at:
        exp = 0 if magnitude == 0 else math.floor(math.log10(magnitude))
        int_digits = max(1, len(integer_part))
        exp -= (exp % int_digits) if int_digits > 1 else 0
        mantissa = magnitude / 10**exp if magnitude else 0.0
        text_digits = f"{mantissa:.{len(decimals)}f}"
        if float(text_digits) >= 10**int_digits:
            exp += 1
            text_digits = f"{magnitude / 10**exp:.{len(decimals)}f}"
        sign = "-" if exp < 0 else "+"
        exp_codes = code_text[exponent_at.end() :]
        exp_digits = len([c for c in exp_codes if c in "0#?"])
        whole, _, frac = text_digits.partition(".")
        body = whole + ("." + frac if decimals else "")
        return ("-" if negative else "") + body + "E" + sign + f"{abs(exp):0{max(exp_digits, 1)}d}"
    rounded = f"{magnitude:.{len(decimals)}f}"
    whole, _, frac = rounded.partition(".")
    if whole == "0" and "0" not in integer_part:
        whole = ""
    if has_thousands and whole:
        whole = f"{int(whole):,}"
    needed = integer_part.count("0")
    whole = whole.rjust(needed, "0")
    frac_out = ""
    for i in range(len(decimals)):
        frac_out += frac[i] if i < len(frac) else "0"
    trailing = len(frac_out)
    while trailing and decimals[trailing - 1] != "0" and frac_out[trailing - 1] == "0":
        trailing -= 1
    frac_out = frac_out[:trailing] + "".join(" " for p in decimals[trailing:] if p == "?")
    # Put the digits where the code's placeholders were, literals around them as written.
    out, placed_number = [], False
    seen_point = False
    for kind, text in tokens:
        if kind == "lit":
            out.append(text)
        elif text in "0#?,":
            if not placed_number and not seen_point:
                out.append(whole)
                placed_number = True
        elif text == ".":
            if not placed_number:
                out.append(whole)
                placed_number = True
            if not seen_point:
                seen_point = True
                if frac_out or any(p == "0" for p in decimals):
                    out.append("." + frac_out)
                elif decimals:
                    out.append(".")
        elif text == "%":
            out.append("%")
        else:
            out.append(text)
    result = "".join(out)
    if negative and float(rounded or 0) != 0:
        result = "-" + result
    return result
