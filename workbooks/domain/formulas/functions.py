"""The functions Tabula computes, with Excel's semantics (docs/formulas.md lists them and their rules).

Each is registered with how many arguments it takes. A plain function gets its arguments evaluated
(``Evaluation.arg``: references stay Areas) and decides how to read them; a ``lazy`` one gets the
evaluation and the argument nodes, for IF and its kin, which evaluate only the branch they take.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import textformat
from .evaluate import Area, Evaluation, arithmetic
from .values import (
    DIV0,
    NA,
    NUM,
    VALUE,
    XlError,
    compare,
    date_parts,
    date_serial,
    is_number,
    number,
    parse_date,
    parse_number,
    serial_date,
    text_result,
    to_bool,
    to_number,
    to_text,
)


@dataclass(frozen=True)
class Function:
    run: Callable
    least: int
    most: int
    lazy: bool = False
    volatile: bool = False


FUNCTIONS: dict[str, Function] = {}


def fn(*names: str, least: int = 1, most: int = 1, lazy: bool = False, volatile: bool = False):
    def register(run: Callable) -> Callable:
        for name in names:
            FUNCTIONS[name] = Function(run, least, most, lazy, volatile)
        return run

    return register


MAX_ARGS = 255


def call(ev: Evaluation, name: str, nodes: tuple):
    name = name.removeprefix("_XLFN.")  # how files write Excel's newer functions
    function = FUNCTIONS.get(name)
    if function is None:
        return XlError("#NAME?", f"unknown function {name}")
    if not function.least <= len(nodes) <= function.most:
        count = f"{function.least}" if function.least == function.most else f"{function.least} to {function.most}"
        return XlError("#VALUE!", f"{name} takes {count} argument{'s' if function.most != 1 else ''}")
    if function.lazy:
        return function.run(ev, nodes)
    return function.run(ev, *[ev.arg(node) for node in nodes])


def is_volatile(tree) -> bool:
    """Whether a formula calls TODAY, NOW, RAND or RANDBETWEEN: computed again on every change."""
    if not isinstance(tree, tuple) or not tree:
        return False
    if tree[0] == "call":
        function = FUNCTIONS.get(tree[1].removeprefix("_XLFN."))
        if function is not None and function.volatile:
            return True
        return any(is_volatile(node) for node in tree[2])
    return any(is_volatile(node) for node in tree[1:] if isinstance(node, tuple))


# -- reading arguments --------------------------------------------------------------------------------


def num(ev: Evaluation, value) -> float | XlError:
    return to_number(ev.one(value))


def text(ev: Evaluation, value) -> str | XlError:
    return to_text(ev.one(value))


def integer(ev: Evaluation, value) -> int | XlError:
    n = num(ev, value)
    return n if isinstance(n, XlError) else math.trunc(n)


def first_error(*values):
    return next((v for v in values if isinstance(v, XlError)), None)


def numbers(ev: Evaluation, args: Iterable, *, text_counts: bool = True) -> list[float] | XlError:
    """The numbers of SUM-like arguments: in references only numbers (text, booleans and blanks are
    skipped), given directly also booleans and numeric text; the first error found is the result."""
    out: list[float] = []
    for arg in args:
        if isinstance(arg, Area):
            for value in arg.values():  # (the hot loop of SUM(A:A): types tested inline)
                kind = type(value)
                if kind is float or kind is int:
                    out.append(value)
                elif kind is XlError:
                    return value
        elif arg is None:
            out.append(0.0)
        else:
            value = to_number(arg) if text_counts or not isinstance(arg, str) else VALUE
            if isinstance(value, XlError):
                return value
            out.append(value)
    return out


def area(value) -> Area | XlError:
    if isinstance(value, Area | XlError):
        return value
    return Area.of([[value]])


# -- criteria (COUNTIF, SUMIF, ... and the D-functions' rules) -----------------------------------------

_CRITERION = re.compile(r"(<=|>=|<>|=|<|>)?(.*)", re.S)


def criterion(value) -> Callable[[object], bool]:
    """A test for cells from a criterion: a number or boolean matches equal values; text may start
    with =, <>, <, >, <= or >=; "=" alone matches blanks, "<>" non-blanks; text comparisons ignore case
    and = and <> take the wildcards * and ? (~ escapes them)."""
    if isinstance(value, XlError):
        return lambda v: isinstance(v, XlError) and v.code == value.code
    if isinstance(value, bool):
        return lambda v: isinstance(v, bool) and v == value
    if is_number(value):
        return lambda v: _numeric_equal(v, value)
    if value is None:
        value = ""
    op, operand = _CRITERION.fullmatch(value).groups()
    op = op or "="
    if operand == "":
        if op == "=":
            return lambda v: v is None or v == ""
        if op == "<>":
            return lambda v: not (v is None or v == "")
    target = parse_criterion_operand(operand)
    if op in ("=", "<>"):
        if isinstance(target, str):
            pattern = wildcard(target)
            test = lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None  # noqa: E731
        elif isinstance(target, bool):
            test = lambda v: isinstance(v, bool) and v == target  # noqa: E731
        elif isinstance(target, XlError):
            test = lambda v: isinstance(v, XlError) and v.code == target.code  # noqa: E731
        else:
            test = lambda v: _numeric_equal(v, target)  # noqa: E731
        return test if op == "=" else (lambda v: not test(v))
    kind = type(target)

    def ordered(v) -> bool:
        if v is None or isinstance(v, XlError):
            return False
        if is_number(target):
            if not is_number(v):
                return False
        elif type(v) is not kind:
            return False
        c = compare(v, target)
        return {"<": c < 0, ">": c > 0, "<=": c <= 0, ">=": c >= 0}[op]

    return ordered


def _numeric_equal(v, target: float) -> bool:
    """Equality with a number in a criterion: text that reads as that number matches too, as in Excel
    (whose COUNTIF counts "020" as 20)."""
    if is_number(v):
        return v == target
    return isinstance(v, str) and parse_number(v) == target


def parse_criterion_operand(operand: str):
    upper = operand.upper()
    if upper in ("TRUE", "FALSE"):
        return upper == "TRUE"
    if upper in ("#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"):
        return XlError(upper)
    parsed = parse_number(operand)
    return operand if parsed is None else parsed


def wildcard(text: str) -> re.Pattern:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "~" and i + 1 < len(text) and text[i + 1] in "*?~":
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.I | re.S)


def matching(ev: Evaluation, pairs: list[tuple]) -> list[tuple[int, int]] | XlError:
    """The (row, column) offsets where every (range, criterion) pair holds; ranges of different shapes are #VALUE!."""
    areas = []
    for rng, crit in pairs:
        a = area(rng)
        if isinstance(a, XlError):
            return a
        c = ev.one(crit)
        areas.append((a, criterion(c)))
    height, width = areas[0][0].height, areas[0][0].width
    if any(a.height != height or a.width != width for a, _ in areas):
        return XlError("#VALUE!", "the ranges differ in size")
    grids = [(a.grid(), test) for a, test in areas]
    return [(i, j) for i in range(height) for j in range(width) if all(test(g[i][j]) for g, test in grids)]


def sized_like(target: Area, shape: Area) -> Area:
    """``target`` resized to ``shape``'s rows and columns from its top-left cell, as SUMIF's sum range is."""
    if target.height == shape.height and target.width == shape.width or target.context is None:
        return target
    rows, cols = target.context.rows(target.sheet), target.context.cols(target.sheet)
    return Area(
        target.context,
        target.sheet,
        rows[target.top : target.top + shape.height],
        cols[target.left : target.left + shape.width],
        target.top,
        target.left,
    )


# -- maths ------------------------------------------------------------------------------------------------


@fn("SUM", most=MAX_ARGS)
def _sum(ev, *args):
    values = numbers(ev, args)
    return values if isinstance(values, XlError) else _total(values)


@fn("PRODUCT", most=MAX_ARGS)
def _product(ev, *args):
    values = numbers(ev, args)
    return values if isinstance(values, XlError) else number(math.prod(values)) if values else 0.0


@fn("SUMSQ", most=MAX_ARGS)
def _sumsq(ev, *args):
    values = numbers(ev, args)
    return values if isinstance(values, XlError) else number(math.fsum(v * v for v in values))


@fn("SUMPRODUCT", most=MAX_ARGS)
def _sumproduct(ev, *args):
    areas = [area(a) for a in args]
    if err := first_error(*areas):
        return err
    if any(a.height != areas[0].height or a.width != areas[0].width for a in areas):
        return XlError("#VALUE!", "the ranges differ in size")
    grids = [list(a.values()) for a in areas]
    total = 0.0
    for values in zip(*grids, strict=True):
        if err := first_error(*values):
            return err
        total += math.prod(v if is_number(v) else 0.0 for v in values)
    return number(total)


def _numbers_at(target: Area, spots) -> list[float] | XlError:
    """The numbers of ``target`` at these offsets (text, booleans and blanks skipped); its first error is the result."""
    values = []
    for i, j in spots:
        if i < target.height and j < target.width:
            v = target.at(i, j)
            if isinstance(v, XlError):
                return v
            if is_number(v):
                values.append(v)
    return values


def _if_function(total: Callable[[list[float]], object]):
    """SUMIF and AVERAGEIF: ``total`` of the numbers of the target range (by default the criteria's
    range, resized to its shape) where the criterion holds."""

    def run(ev, rng, crit, target_range=None):
        a = area(rng)
        if isinstance(a, XlError):
            return a
        target = a if target_range is None else area(target_range)
        if isinstance(target, XlError):
            return target
        spots = matching(ev, [(a, crit)])
        values = spots if isinstance(spots, XlError) else _numbers_at(sized_like(target, a), spots)
        return values if isinstance(values, XlError) else total(values)

    return run


def _ifs_function(name: str, total: Callable[[list[float]], object]):
    """SUMIFS, AVERAGEIFS, MINIFS, MAXIFS: ``total`` of the target range's numbers where every
    (range, criterion) pair holds; the ranges must be the target's size."""

    def run(ev, target_range, *pairs):
        if len(pairs) % 2:
            return XlError("#VALUE!", f"{name} takes ranges and criteria in pairs")
        target = area(target_range)
        if isinstance(target, XlError):
            return target
        spots = matching(ev, list(zip(pairs[::2], pairs[1::2], strict=True)))
        if isinstance(spots, XlError):
            return spots
        first = area(pairs[0])
        if not isinstance(first, XlError) and (first.height != target.height or first.width != target.width):
            return XlError("#VALUE!", "the ranges differ in size")
        values = _numbers_at(target, spots)
        return values if isinstance(values, XlError) else total(values)

    return run


def _total(values: list[float]) -> float | XlError:
    return number(math.fsum(values))


def _mean(values: list[float]) -> float | XlError:
    return DIV0 if not values else number(math.fsum(values) / len(values))


fn("SUMIF", least=2, most=3)(_if_function(_total))
fn("AVERAGEIF", least=2, most=3)(_if_function(_mean))
fn("SUMIFS", least=3, most=MAX_ARGS)(_ifs_function("SUMIFS", _total))
fn("AVERAGEIFS", least=3, most=MAX_ARGS)(_ifs_function("AVERAGEIFS", _mean))
fn("MINIFS", least=3, most=MAX_ARGS)(_ifs_function("MINIFS", lambda values: min(values) if values else 0.0))
fn("MAXIFS", least=3, most=MAX_ARGS)(_ifs_function("MAXIFS", lambda values: max(values) if values else 0.0))


def _math1(name: str, f: Callable[[float], float | XlError], domain: Callable[[float], bool] = lambda x: True):
    def run(ev, x):
        n = num(ev, x)
        if isinstance(n, XlError):
            return n
        if not domain(n):
            return NUM
        try:
            result = f(n)
        except (OverflowError, ValueError):
            return NUM
        return result if isinstance(result, XlError) else number(result)

    fn(name)(run)


_math1("ABS", abs)
_math1("SQRT", math.sqrt, lambda x: x >= 0)
_math1("EXP", math.exp)
_math1("LN", math.log, lambda x: x > 0)
_math1("LOG10", math.log10, lambda x: x > 0)
_math1("SIN", math.sin)
_math1("COS", math.cos)
_math1("TAN", math.tan)
_math1("ASIN", math.asin, lambda x: -1 <= x <= 1)
_math1("ACOS", math.acos, lambda x: -1 <= x <= 1)
_math1("ATAN", math.atan)
_math1("RADIANS", math.radians)
_math1("DEGREES", math.degrees)
_math1("INT", lambda x: float(math.floor(x)))
_math1("SIGN", lambda x: float((x > 0) - (x < 0)))
_math1("EVEN", lambda x: math.copysign(math.ceil(abs(x) / 2) * 2, x))
_math1("ODD", lambda x: math.copysign(max(1, math.ceil((abs(x) - 1) / 2) * 2 + 1), x))
_math1("FACT", lambda x: float(math.factorial(math.trunc(x))) if x < 171 else NUM, lambda x: x >= 0)


@fn("ATAN2", least=2, most=2)
def _atan2(ev, x, y):
    a, b = num(ev, x), num(ev, y)
    if err := first_error(a, b):
        return err
    return DIV0 if a == 0 and b == 0 else number(math.atan2(b, a))


@fn("PI", least=0, most=0)
def _pi(ev):
    return math.pi


@fn("POWER", least=2, most=2)
def _power(ev, x, y):
    a, b = num(ev, x), num(ev, y)
    return first_error(a, b) or arithmetic("^", a, b)


@fn("LOG", most=2)
def _log(ev, x, base=10.0):
    a, b = num(ev, x), num(ev, base)
    if err := first_error(a, b):
        return err
    if a <= 0 or b <= 0:
        return NUM
    return DIV0 if b == 1 else number(math.log(a) / math.log(b))


@fn("MOD", least=2, most=2)
def _mod(ev, x, y):
    a, b = num(ev, x), num(ev, y)
    if err := first_error(a, b):
        return err
    return DIV0 if b == 0 else number(a - b * math.floor(a / b))


@fn("QUOTIENT", least=2, most=2)
def _quotient(ev, x, y):
    a, b = num(ev, x), num(ev, y)
    if err := first_error(a, b):
        return err
    return DIV0 if b == 0 else float(math.trunc(a / b))


def _round_with(ev, x, digits, how: Callable[[float], float]):
    a, d = num(ev, x), integer(ev, digits)
    if err := first_error(a, d):
        return err
    scale = 10.0**d
    # Excel rounds the decimal number it shows (15 digits), not the binary one: 2.675 rounds to 2.68.
    shifted = float(f"{abs(a) * scale:.15g}") if abs(a * scale) < 1e15 else abs(a) * scale
    return number(math.copysign(how(shifted) / scale, a))


@fn("ROUND", least=2, most=2)
def _round(ev, x, digits):
    return _round_with(ev, x, digits, lambda v: math.floor(v + 0.5))


@fn("ROUNDUP", least=2, most=2)
def _roundup(ev, x, digits):
    return _round_with(ev, x, digits, math.ceil)


@fn("ROUNDDOWN", least=2, most=2)
def _rounddown(ev, x, digits):
    return _round_with(ev, x, digits, math.floor)


@fn("TRUNC", most=2)
def _trunc(ev, x, digits=0.0):
    return _round_with(ev, x, digits, math.floor)


@fn("MROUND", least=2, most=2)
def _mround(ev, x, multiple):
    a, m = num(ev, x), num(ev, multiple)
    if err := first_error(a, m):
        return err
    if m == 0:
        return 0.0
    if a * m < 0:
        return NUM
    return number(math.copysign(math.floor(abs(a) / abs(m) + 0.5) * abs(m), a))


def _to_multiple(a: float, m: float, up: bool) -> float:
    q = a / m
    q = float(f"{q:.15g}")
    return (math.ceil(q) if up else math.floor(q)) * m


@fn("CEILING", least=1, most=2)
def _ceiling(ev, x, significance=1.0):
    a, m = num(ev, x), num(ev, significance)
    if err := first_error(a, m):
        return err
    if m == 0:
        return 0.0
    if a > 0 and m < 0:
        return NUM
    if a < 0 and m < 0:
        return number(-_to_multiple(-a, -m, True))
    return number(_to_multiple(a, m, True))


@fn("FLOOR", least=1, most=2)
def _floor(ev, x, significance=1.0):
    a, m = num(ev, x), num(ev, significance)
    if err := first_error(a, m):
        return err
    if m == 0:
        return DIV0 if a != 0 else 0.0
    if a > 0 and m < 0:
        return NUM
    if a < 0 and m < 0:
        return number(-_to_multiple(-a, -m, False))
    return number(_to_multiple(a, m, False))


@fn("CEILING.MATH", most=3)
def _ceiling_math(ev, x, significance=1.0, mode=0.0):
    a, m, md = num(ev, x), num(ev, significance), num(ev, mode)
    if err := first_error(a, m, md):
        return err
    m = abs(m) or 1.0
    if a < 0 and md:
        return number(-_to_multiple(-a, m, True))
    return number(_to_multiple(a, m, True))


@fn("FLOOR.MATH", most=3)
def _floor_math(ev, x, significance=1.0, mode=0.0):
    a, m, md = num(ev, x), num(ev, significance), num(ev, mode)
    if err := first_error(a, m, md):
        return err
    m = abs(m) or 1.0
    if a < 0 and md:
        return number(-_to_multiple(-a, m, False))
    return number(_to_multiple(a, m, False))


@fn("GCD", most=MAX_ARGS)
def _gcd(ev, *args):
    values = numbers(ev, args)
    if isinstance(values, XlError):
        return values
    if any(v < 0 for v in values):
        return NUM
    return float(math.gcd(*(math.trunc(v) for v in values)))


@fn("LCM", most=MAX_ARGS)
def _lcm(ev, *args):
    values = numbers(ev, args)
    if isinstance(values, XlError):
        return values
    if any(v < 0 for v in values):
        return NUM
    return number(float(math.lcm(*(math.trunc(v) for v in values))))


@fn("RAND", least=0, most=0, volatile=True)
def _rand(ev):
    return ev.context.random()


@fn("RANDBETWEEN", least=2, most=2, volatile=True)
def _randbetween(ev, low, high):
    a, b = num(ev, low), num(ev, high)
    if err := first_error(a, b):
        return err
    lo, hi = math.ceil(a), math.floor(b)
    if lo > hi:
        return NUM
    return float(lo + math.floor(ev.context.random() * (hi - lo + 1)))


# -- statistics -------------------------------------------------------------------------------------------


@fn("AVERAGE", most=MAX_ARGS)
def _average(ev, *args):
    values = numbers(ev, args)
    return values if isinstance(values, XlError) else _mean(values)


@fn("COUNT", most=MAX_ARGS)
def _count(ev, *args):
    n = 0
    for arg in args:
        if isinstance(arg, Area):
            n += sum(1 for v in arg.values() if is_number(v))
        elif arg is not None and not isinstance(arg, XlError) and not isinstance(to_number(arg), XlError):
            n += 1
    return float(n)


@fn("COUNTA", most=MAX_ARGS)
def _counta(ev, *args):
    n = 0
    for arg in args:
        if isinstance(arg, Area):
            n += sum(1 for v in arg.values() if v is not None)
        else:
            n += 1
    return float(n)


@fn("COUNTBLANK")
def _countblank(ev, rng):
    a = area(rng)
    if isinstance(a, XlError):
        return a
    return float(sum(1 for v in a.values() if v is None or v == ""))


@fn("COUNTIF", least=2, most=2)
def _countif(ev, rng, crit):
    spots = matching(ev, [(rng, crit)])
    return spots if isinstance(spots, XlError) else float(len(spots))


@fn("COUNTIFS", least=2, most=MAX_ARGS)
def _countifs(ev, *pairs):
    if len(pairs) % 2:
        return XlError("#VALUE!", "COUNTIFS takes ranges and criteria in pairs")
    spots = matching(ev, list(zip(pairs[::2], pairs[1::2], strict=True)))
    return spots if isinstance(spots, XlError) else float(len(spots))


def _extreme(pick):
    def run(ev, *args):
        values = numbers(ev, args)
        if isinstance(values, XlError):
            return values
        return pick(values) if values else 0.0

    return run


fn("MIN", most=MAX_ARGS)(_extreme(min))
fn("MAX", most=MAX_ARGS)(_extreme(max))


def _stat(f, least_values: int = 1):
    def run(ev, *args):
        values = numbers(ev, args)
        if isinstance(values, XlError):
            return values
        if len(values) < least_values:
            return DIV0
        try:
            return number(f(values))
        except (statistics.StatisticsError, ValueError):
            return NUM

    return run


fn("MEDIAN", most=MAX_ARGS)(_stat(statistics.median))
fn("STDEV", "STDEV.S", most=MAX_ARGS)(_stat(statistics.stdev, 2))
fn("STDEVP", "STDEV.P", most=MAX_ARGS)(_stat(statistics.pstdev))
fn("VAR", "VAR.S", most=MAX_ARGS)(_stat(statistics.variance, 2))
fn("VARP", "VAR.P", most=MAX_ARGS)(_stat(statistics.pvariance))


@fn("MODE", "MODE.SNGL", most=MAX_ARGS)
def _mode(ev, *args):
    values = numbers(ev, args)
    if isinstance(values, XlError):
        return values
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts.values(), default=0)
    if best < 2:
        return NA
    return next(v for v in values if counts[v] == best)  # the first to reach the highest count, as Excel


def _kth(largest: bool):
    def run(ev, rng, k):
        values = numbers(ev, [area(rng)])
        n = num(ev, k)
        if err := first_error(values, n):
            return err
        index = math.ceil(n)
        if not 1 <= index <= len(values):
            return NUM
        return sorted(values, reverse=largest)[index - 1]

    return run


fn("LARGE", least=2, most=2)(_kth(True))
fn("SMALL", least=2, most=2)(_kth(False))


@fn("RANK", "RANK.EQ", least=2, most=3)
def _rank(ev, x, rng, order=0.0):
    value, o = num(ev, x), num(ev, order)
    values = numbers(ev, [area(rng)])
    if err := first_error(value, o, values):
        return err
    if value not in values:
        return NA
    return float(1 + sum(1 for v in values if (v < value if o else v > value)))


def _percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    h = (len(values) - 1) * p
    lo = math.floor(h)
    return values[lo] + (h - lo) * (values[min(lo + 1, len(values) - 1)] - values[lo])


@fn("PERCENTILE", "PERCENTILE.INC", least=2, most=2)
def _percentile_inc(ev, rng, k):
    values = numbers(ev, [area(rng)])
    p = num(ev, k)
    if err := first_error(values, p):
        return err
    if not values or not 0 <= p <= 1:
        return NUM
    return number(_percentile(values, p))


@fn("QUARTILE", "QUARTILE.INC", least=2, most=2)
def _quartile(ev, rng, q):
    values = numbers(ev, [area(rng)])
    n = integer(ev, q)
    if err := first_error(values, n):
        return err
    if not values or not 0 <= n <= 4:
        return NUM
    return number(_percentile(values, n / 4))


# -- logic ------------------------------------------------------------------------------------------------


@fn("IF", least=1, most=3, lazy=True)
def _if(ev, nodes):
    test = to_bool(ev.one(ev.eval(nodes[0])))
    if isinstance(test, XlError):
        return test
    if test:
        return ev.eval(nodes[1]) if len(nodes) > 1 else True
    return ev.eval(nodes[2]) if len(nodes) > 2 else False


@fn("IFS", least=2, most=MAX_ARGS, lazy=True)
def _ifs(ev, nodes):
    if len(nodes) % 2:
        return XlError("#VALUE!", "IFS takes conditions and values in pairs")
    for test_node, value_node in zip(nodes[::2], nodes[1::2], strict=True):
        test = to_bool(ev.one(ev.eval(test_node)))
        if isinstance(test, XlError):
            return test
        if test:
            return ev.eval(value_node)
    return XlError("#N/A", "no condition of IFS is true")


@fn("IFERROR", least=2, most=2, lazy=True)
def _iferror(ev, nodes):
    value = ev.one(ev.eval(nodes[0]))
    return ev.eval(nodes[1]) if isinstance(value, XlError) else value


@fn("IFNA", least=2, most=2, lazy=True)
def _ifna(ev, nodes):
    value = ev.one(ev.eval(nodes[0]))
    return ev.eval(nodes[1]) if isinstance(value, XlError) and value.code == "#N/A" else value


@fn("SWITCH", least=3, most=MAX_ARGS, lazy=True)
def _switch(ev, nodes):
    value = ev.one(ev.eval(nodes[0]))
    if isinstance(value, XlError):
        return value
    rest = nodes[1:]
    for case_node, result_node in zip(rest[::2], rest[1::2], strict=False):
        case = ev.one(ev.eval(case_node))
        if isinstance(case, XlError):
            return case
        if type(case) is type(value) or (is_number(case) and is_number(value)):
            if compare(case, value) == 0:
                return ev.eval(result_node)
    return ev.eval(rest[-1]) if len(rest) % 2 else XlError("#N/A", "no case of SWITCH matches")


@fn("CHOOSE", least=2, most=MAX_ARGS, lazy=True)
def _choose(ev, nodes):
    index = to_number(ev.one(ev.eval(nodes[0])))
    if isinstance(index, XlError):
        return index
    i = math.trunc(index)
    if not 1 <= i < len(nodes):
        return VALUE
    return ev.eval(nodes[i]) if nodes[i][0] != "ref" else ev.arg(nodes[i])


def _logical(ev, args) -> list[bool] | XlError:
    out = []
    for arg in args:
        if isinstance(arg, Area):
            for v in arg.values():
                if isinstance(v, XlError):
                    return v
                if isinstance(v, bool) or is_number(v):
                    out.append(bool(v))
        else:
            b = to_bool(arg)
            if isinstance(b, XlError):
                return b
            out.append(b)
    return out if out else VALUE


@fn("AND", most=MAX_ARGS)
def _and(ev, *args):
    values = _logical(ev, args)
    return values if isinstance(values, XlError) else all(values)


@fn("OR", most=MAX_ARGS)
def _or(ev, *args):
    values = _logical(ev, args)
    return values if isinstance(values, XlError) else any(values)


@fn("XOR", most=MAX_ARGS)
def _xor(ev, *args):
    values = _logical(ev, args)
    return values if isinstance(values, XlError) else sum(values) % 2 == 1


@fn("NOT")
def _not(ev, x):
    b = to_bool(ev.one(x))
    return b if isinstance(b, XlError) else not b


@fn("TRUE", least=0, most=0)
def _true(ev):
    return True


@fn("FALSE", least=0, most=0)
def _false(ev):
    return False


# -- text -------------------------------------------------------------------------------------------------


def _text1(name: str, f: Callable[[str], str]):
    def run(ev, x):
        t = text(ev, x)
        return t if isinstance(t, XlError) else text_result(f(t))

    fn(name)(run)


_text1("UPPER", str.upper)
_text1("LOWER", str.lower)
_text1("PROPER", lambda t: re.sub(r"[A-Za-zÀ-ÿ]+", lambda m: m[0][0].upper() + m[0][1:].lower(), t))
_text1("TRIM", lambda t: " ".join(part for part in t.split(" ") if part))
_text1("CLEAN", lambda t: "".join(ch for ch in t if ord(ch) >= 32))


@fn("LEN")
def _len(ev, x):
    t = text(ev, x)
    return t if isinstance(t, XlError) else float(len(t))


@fn("LEFT", most=2)
def _left(ev, x, n=1.0):
    t, k = text(ev, x), integer(ev, n)
    if err := first_error(t, k):
        return err
    return VALUE if k < 0 else t[:k]


@fn("RIGHT", most=2)
def _right(ev, x, n=1.0):
    t, k = text(ev, x), integer(ev, n)
    if err := first_error(t, k):
        return err
    return VALUE if k < 0 else t[len(t) - k :] if k else ""


@fn("MID", least=3, most=3)
def _mid(ev, x, start, n):
    t, s, k = text(ev, x), integer(ev, start), integer(ev, n)
    if err := first_error(t, s, k):
        return err
    if s < 1 or k < 0:
        return VALUE
    return t[s - 1 : s - 1 + k]


@fn("REPT", least=2, most=2)
def _rept(ev, x, n):
    t, k = text(ev, x), integer(ev, n)
    if err := first_error(t, k):
        return err
    if k < 0:
        return VALUE
    if len(t) * k > 32_767 or len(t) * k > 10_000:
        return XlError("#VALUE!", "text longer than 10,000 characters")
    return t * k


@fn("SUBSTITUTE", least=3, most=4)
def _substitute(ev, x, old, new, instance=None):
    t, o, n = text(ev, x), text(ev, old), text(ev, new)
    if err := first_error(t, o, n):
        return err
    if not o:
        return t
    if instance is None:
        return text_result(t.replace(o, n))
    k = integer(ev, instance)
    if isinstance(k, XlError):
        return k
    if k < 1:
        return VALUE
    at = -1
    for _ in range(k):
        at = t.find(o, at + 1)
        if at < 0:
            return t
    return text_result(t[:at] + n + t[at + len(o) :])


@fn("REPLACE", least=4, most=4)
def _replace(ev, x, start, count, new):
    t, s, k, n = text(ev, x), integer(ev, start), integer(ev, count), text(ev, new)
    if err := first_error(t, s, k, n):
        return err
    if s < 1 or k < 0:
        return VALUE
    return text_result(t[: s - 1] + n + t[s - 1 + k :])


@fn("FIND", least=2, most=3)
def _find(ev, needle, haystack, start=1.0):
    n, h, s = text(ev, needle), text(ev, haystack), integer(ev, start)
    if err := first_error(n, h, s):
        return err
    if s < 1 or s > len(h) + 1:
        return VALUE
    at = h.find(n, s - 1)
    return XlError("#VALUE!", "not found") if at < 0 else float(at + 1)


@fn("SEARCH", least=2, most=3)
def _search(ev, needle, haystack, start=1.0):
    n, h, s = text(ev, needle), text(ev, haystack), integer(ev, start)
    if err := first_error(n, h, s):
        return err
    if s < 1 or s > len(h) + 1:
        return VALUE
    m = wildcard(n).pattern
    found = re.compile(m, re.I | re.S).search(h, s - 1)
    return XlError("#VALUE!", "not found") if found is None else float(found.start() + 1)


@fn("CONCATENATE", most=MAX_ARGS)
def _concatenate(ev, *args):
    parts = [text(ev, a) for a in args]
    return first_error(*parts) or text_result("".join(parts))


@fn("CONCAT", most=MAX_ARGS)
def _concat(ev, *args):
    parts = []
    for arg in args:
        for v in arg.values() if isinstance(arg, Area) else [arg]:
            t = to_text(v)
            if isinstance(t, XlError):
                return t
            parts.append(t)
            if sum(map(len, parts)) > 10_000:
                return XlError("#VALUE!", "text longer than 10,000 characters")
    return "".join(parts)


@fn("TEXTJOIN", least=3, most=MAX_ARGS)
def _textjoin(ev, delimiter, ignore_empty, *args):
    d, skip = text(ev, delimiter), to_bool(ev.one(ignore_empty))
    if err := first_error(d, skip):
        return err
    parts = []
    for arg in args:
        for v in arg.values() if isinstance(arg, Area) else [arg]:
            t = to_text(v)
            if isinstance(t, XlError):
                return t
            if t or not skip:
                parts.append(t)
    return text_result(d.join(parts))


@fn("EXACT", least=2, most=2)
def _exact(ev, a, b):
    x, y = text(ev, a), text(ev, b)
    return first_error(x, y) or x == y


@fn("VALUE")
def _value(ev, x):
    v = ev.one(x)
    if isinstance(v, XlError) or is_number(v):
        return v
    if isinstance(v, bool):
        return VALUE
    parsed = to_number(v)
    return parsed


@fn("TEXT", least=2, most=2)
def _text(ev, x, code):
    v, c = ev.one(x), text(ev, code)
    if err := first_error(v, c):
        return err
    return text_result(textformat.format_value(v, c))


@fn("CHAR")
def _char(ev, x):
    n = integer(ev, x)
    if isinstance(n, XlError):
        return n
    return VALUE if not 1 <= n <= 255 else bytes([n]).decode("cp1252", errors="replace")


@fn("CODE")
def _code(ev, x):
    t = text(ev, x)
    if isinstance(t, XlError):
        return t
    if not t:
        return VALUE
    encoded = t[0].encode("cp1252", errors="replace")
    return float(encoded[0])


@fn("T")
def _t(ev, x):
    v = ev.one(x)
    return v if isinstance(v, XlError | str) else ""


@fn("N")
def _n(ev, x):
    v = ev.one(x)
    if isinstance(v, XlError) or is_number(v):
        return v
    return (1.0 if v else 0.0) if isinstance(v, bool) else 0.0


# -- lookup -----------------------------------------------------------------------------------------------


def _equal(a, b) -> bool:
    if a is None or b is None or isinstance(a, XlError) or isinstance(b, XlError):
        return False
    if is_number(a) and is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    return compare(a, b) == 0


def _exact_index(value, items: list, *, wild: bool) -> int | None:
    if isinstance(value, str) and wild and any(ch in value for ch in "*?~"):
        pattern = wildcard(value)
        return next((i for i, v in enumerate(items) if isinstance(v, str) and pattern.fullmatch(v)), None)
    return next((i for i, v in enumerate(items) if _equal(v, value)), None)


def _approximate_index(value, items: list, *, descending: bool = False) -> int | None:
    """The last position whose item is not greater than ``value`` (items sorted ascending), by binary
    search as Excel does; items of another kind than ``value`` are stepped over."""
    lo, hi, found = 0, len(items) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        probe, k = mid, mid
        while k <= hi and not _same_kind(items[k], value):
            k += 1
        if k > hi:
            hi = probe - 1
            continue
        c = compare(items[k], value)
        if descending:
            c = -c
        if c <= 0:
            found, lo = k, k + 1
        else:
            hi = mid - 1
    return found


def _same_kind(a, b) -> bool:
    return (is_number(a) and is_number(b)) or (type(a) is type(b) and a is not None)


def _lookup(vertical: bool):
    def run(ev, value, table, index, approximate=True):
        v, t, k = ev.one(value), area(table), integer(ev, index)
        approx = to_bool(ev.one(approximate)) if approximate is not True else True
        if err := first_error(v, t, k, approx):
            return err
        if v is None:
            v = 0.0
        width = t.width if vertical else t.height
        if k < 1:
            return VALUE
        if k > width:
            return XlError("#REF!", "the column is outside the table")
        keys = t.column(0) if vertical else t.line(0)
        i = _approximate_index(v, keys) if approx else _exact_index(v, keys, wild=True)
        if i is None:
            return XlError("#N/A", f"{'VLOOKUP' if vertical else 'HLOOKUP'} found no match")
        return t.at(i, k - 1) if vertical else t.at(k - 1, i)

    return run


fn("VLOOKUP", least=3, most=4)(_lookup(True))
fn("HLOOKUP", least=3, most=4)(_lookup(False))


def _vector(a: Area) -> list | None:
    if a.height == 1:
        return a.line(0)
    if a.width == 1:
        return a.column(0)
    return None


@fn("MATCH", least=2, most=3)
def _match(ev, value, rng, kind=1.0):
    v, a, m = ev.one(value), area(rng), num(ev, kind)
    if err := first_error(v, a, m):
        return err
    items = _vector(a)
    if items is None:
        return XlError("#N/A", "MATCH looks in one row or one column")
    if m == 0:
        i = _exact_index(v, items, wild=True)
    elif m > 0:
        i = _approximate_index(v, items)
    else:
        i = _approximate_descending(v, items)
    return XlError("#N/A", "MATCH found no match") if i is None else float(i + 1)


def _approximate_descending(value, items: list) -> int | None:
    """MATCH type -1: the smallest item not less than ``value``, items sorted descending."""
    found = None
    for i, item in enumerate(items):
        if _same_kind(item, value) and compare(item, value) >= 0:
            found = i
        elif _same_kind(item, value):
            break
    return found


@fn("INDEX", least=2, most=3)
def _index(ev, rng, row, col=None):
    a = area(rng)
    r = integer(ev, row)
    c = integer(ev, col) if col is not None else None
    if err := first_error(a, r, c):
        return err
    if c is None:
        if a.height == 1 and a.width > 1:
            r, c = 1, r
        else:
            c = 1 if a.width == 1 else 0
    if r < 0 or c < 0 or r > a.height or c > a.width:
        return XlError("#REF!", "INDEX is outside the range")
    if r == 0 and c == 0:
        return a
    if r == 0:
        return _column_of(a, c - 1)
    if c == 0:
        return _row_of(a, r - 1)
    return a.at(r - 1, c - 1)


@fn("XLOOKUP", least=3, most=6)
def _xlookup(ev, value, lookup, returns, if_not_found=None, match_mode=0.0, search_mode=1.0):
    v, look, ret = ev.one(value), area(lookup), area(returns)
    mode, search = num(ev, match_mode), num(ev, search_mode)
    if err := first_error(v, look, ret, mode, search):
        return err
    items = _vector(look)
    if items is None:
        return VALUE
    vertical = look.width == 1 and look.height > 1 or (look.height == 1 and look.width == 1)
    if (vertical and ret.height != look.height) or (not vertical and ret.width != look.width):
        return XlError("#VALUE!", "the lookup and return ranges differ in size")
    order = list(range(len(items)))
    if search < 0:
        order.reverse()
    found = None
    if mode == 2:
        pattern = wildcard(v) if isinstance(v, str) else None
        found = next((i for i in order if (pattern.fullmatch(items[i]) if pattern and isinstance(items[i], str) else _equal(items[i], v))), None)
    else:
        found = next((i for i in order if _equal(items[i], v)), None)
        if found is None and mode in (-1, 1):
            candidates = [i for i in order if _same_kind(items[i], v) and (compare(items[i], v) < 0 if mode == -1 else compare(items[i], v) > 0)]
            if candidates:
                pick = max if mode == -1 else min
                best = pick(items[i] for i in candidates)
                found = next(i for i in candidates if compare(items[i], best) == 0)
    if found is None:
        return XlError("#N/A", "XLOOKUP found no match") if if_not_found is None else ev.one(if_not_found)
    if vertical:
        return ret.at(found, 0) if ret.width == 1 else _row_of(ret, found)
    return ret.at(0, found) if ret.height == 1 else _column_of(ret, found)


def _row_of(a: Area, i: int) -> Area:
    """Row ``i`` of an area, as an area."""
    return Area(a.context, a.sheet, [a.rows[i]], a.cols, a.top + i, a.left, None if a.context else [a.grid()[i]])


def _column_of(a: Area, j: int) -> Area:
    return Area(a.context, a.sheet, a.rows, [a.cols[j]], a.top, a.left + j, None if a.context else [[x[j]] for x in a.grid()])


@fn("ROW", least=0, most=1)
def _row(ev, ref=None):
    if ref is None:
        row, _ = ev.position()
        return XlError("#REF!") if row is None else float(row + 1)
    a = area(ref)
    return a if isinstance(a, XlError) else float(a.top + 1)


@fn("COLUMN", least=0, most=1)
def _column(ev, ref=None):
    if ref is None:
        _, col = ev.position()
        return XlError("#REF!") if col is None else float(col + 1)
    a = area(ref)
    return a if isinstance(a, XlError) else float(a.left + 1)


@fn("ROWS")
def _rows(ev, ref):
    a = area(ref)
    return a if isinstance(a, XlError) else float(a.height)


@fn("COLUMNS")
def _columns(ev, ref):
    a = area(ref)
    return a if isinstance(a, XlError) else float(a.width)


# -- dates and times --------------------------------------------------------------------------------------


def _date_of(ev, x) -> dt.date | XlError:
    n = num(ev, x)
    return n if isinstance(n, XlError) else serial_date(n)


@fn("DATE", least=3, most=3)
def _date(ev, year, month, day):
    y, m, d = integer(ev, year), integer(ev, month), integer(ev, day)
    if err := first_error(y, m, d):
        return err
    if 0 <= y < 1900:
        y += 1900
    if not 1900 <= y <= 9999:
        return NUM
    y += (m - 1) // 12
    m = (m - 1) % 12 + 1
    if not 1900 <= y <= 9999:
        return NUM
    serial = date_serial(dt.date(y, m, 1)) + d - 1  # before March 1900 serials count 1900-02-29 too
    if serial < 0:
        return NUM
    return float(serial)


def _part(index: int):
    def run(ev, x):
        n = num(ev, x)
        if isinstance(n, XlError):
            return n
        parts = date_parts(n)
        return parts if isinstance(parts, XlError) else float(parts[index])

    return run


fn("YEAR")(_part(0))
fn("MONTH")(_part(1))
fn("DAY")(_part(2))


def _time_part(unit: int):
    def run(ev, x):
        n = num(ev, x)
        if isinstance(n, XlError):
            return n
        if n < 0:
            return NUM
        seconds = round((n - math.floor(n)) * 86400)
        return float([seconds // 3600 % 24, seconds // 60 % 60, seconds % 60][unit])

    return run


fn("HOUR")(_time_part(0))
fn("MINUTE")(_time_part(1))
fn("SECOND")(_time_part(2))


@fn("TIME", least=3, most=3)
def _time(ev, h, m, s):
    a, b, c = integer(ev, h), integer(ev, m), integer(ev, s)
    if err := first_error(a, b, c):
        return err
    total = a * 3600 + b * 60 + c
    if total < 0:
        return NUM
    return (total % 86400) / 86400


@fn("WEEKDAY", most=2)
def _weekday(ev, x, kind=1.0):
    n, k = num(ev, x), integer(ev, kind)
    if err := first_error(n, k):
        return err
    if n < 0:
        return NUM
    sunday_based = (math.floor(n) + 6) % 7  # 0: Sunday (serial 1, 1900-01-01, was a Sunday in Excel's count)
    if k == 1:
        return float(sunday_based + 1)
    if k in (2, 11):
        return float((sunday_based + 6) % 7 + 1)
    if k in (3,):
        return float((sunday_based + 6) % 7)
    if 12 <= k <= 17:
        return float((sunday_based - (k - 10)) % 7 + 1)
    return NUM


def _add_months(ev, start, months, end_of_month: bool):
    n, m = num(ev, start), integer(ev, months)
    if err := first_error(n, m):
        return err
    parts = date_parts(n)
    if isinstance(parts, XlError):
        return parts
    y, mo, d = parts
    total = y * 12 + (mo - 1) + m
    y, mo = divmod(total, 12)
    mo += 1
    if not 1900 <= y <= 9999:
        return NUM
    last = calendar.monthrange(y, mo)[1]
    return float(date_serial(dt.date(y, mo, last if end_of_month else min(max(d, 1), last))))


@fn("EDATE", least=2, most=2)
def _edate(ev, start, months):
    return _add_months(ev, start, months, False)


@fn("EOMONTH", least=2, most=2)
def _eomonth(ev, start, months):
    return _add_months(ev, start, months, True)


@fn("DATEDIF", least=3, most=3)
def _datedif(ev, start, end, unit):
    a, b, u = _date_of(ev, start), _date_of(ev, end), text(ev, unit)
    if err := first_error(a, b, u):
        return err
    if a > b:
        return NUM
    u = u.upper()
    months = (b.year - a.year) * 12 + b.month - a.month - (b.day < a.day)
    if u == "D":
        return float((b - a).days)
    if u == "M":
        return float(months)
    if u == "Y":
        return float(months // 12)
    if u == "YM":
        return float(months % 12)
    if u == "MD":
        return float(b.day - a.day if b.day >= a.day else (b - _shift_months(a, months)).days)
    if u == "YD":
        anchor = _replace_year(a, b.year)
        if anchor > b:
            anchor = _replace_year(a, b.year - 1)
        return float((b - anchor).days)
    return NUM


def _shift_months(date: dt.date, months: int) -> dt.date:
    total = date.year * 12 + date.month - 1 + months
    y, m = divmod(total, 12)
    return dt.date(y, m + 1, min(date.day, calendar.monthrange(y, m + 1)[1]))


def _replace_year(date: dt.date, year: int) -> dt.date:
    return dt.date(year, date.month, min(date.day, calendar.monthrange(year, date.month)[1]))


@fn("DAYS", least=2, most=2)
def _days(ev, end, start):
    a, b = num(ev, end), num(ev, start)
    return first_error(a, b) or float(math.floor(a) - math.floor(b))


@fn("DATEVALUE")
def _datevalue(ev, x):
    t = text(ev, x)
    if isinstance(t, XlError):
        return t
    parsed = parse_date(t)
    return XlError("#VALUE!", "not a date") if parsed is None else float(math.floor(parsed))


@fn("TIMEVALUE")
def _timevalue(ev, x):
    t = text(ev, x)
    if isinstance(t, XlError):
        return t
    parsed = parse_date(t)
    return XlError("#VALUE!", "not a time") if parsed is None else parsed - math.floor(parsed)


def _now_serial(ev) -> float:
    now = ev.context.now
    return date_serial(now.date()) + (now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6) / 86400


@fn("TODAY", least=0, most=0, volatile=True)
def _today(ev):
    return float(math.floor(_now_serial(ev)))


@fn("NOW", least=0, most=0, volatile=True)
def _now(ev):
    return _now_serial(ev)


# -- information ------------------------------------------------------------------------------------------


def _is(name: str, test: Callable[[object], bool]):
    def run(ev, x):
        return test(ev.one(x))

    fn(name)(run)


_is("ISBLANK", lambda v: v is None)
_is("ISNUMBER", is_number)
_is("ISTEXT", lambda v: isinstance(v, str))
_is("ISNONTEXT", lambda v: not isinstance(v, str))
_is("ISLOGICAL", lambda v: isinstance(v, bool))
_is("ISERROR", lambda v: isinstance(v, XlError))
_is("ISERR", lambda v: isinstance(v, XlError) and v.code != "#N/A")
_is("ISNA", lambda v: isinstance(v, XlError) and v.code == "#N/A")


def _parity(odd: bool):
    def run(ev, x):
        n = num(ev, x)
        return n if isinstance(n, XlError) else (math.trunc(n) % 2 == 1) == odd

    return run


fn("ISEVEN")(_parity(False))
fn("ISODD")(_parity(True))


@fn("ISREF", lazy=True)
def _isref(ev, nodes):
    return nodes[0][0] == "ref" and isinstance(ev.arg(nodes[0]), Area)


@fn("NA", least=0, most=0)
def _na(ev):
    return NA


_ERROR_NUMBERS = {"#NULL!": 1, "#DIV/0!": 2, "#VALUE!": 3, "#REF!": 4, "#NAME?": 5, "#NUM!": 6, "#N/A": 7}


@fn("ERROR.TYPE")
def _error_type(ev, x):
    v = ev.one(x)
    return float(_ERROR_NUMBERS[v.code]) if isinstance(v, XlError) else NA
