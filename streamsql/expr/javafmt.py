"""Java date patterns (``yyyy-MM-dd HH:mm:ss.SSS``) as vectorized formatters and parsers.

A pattern is split into tokens (letter runs, quoted text, other characters). Formatting joins one
string array per token run: runs that strftime can print go to a single ``pc.strftime`` call,
the rest (unpadded fields, fractions of a second) are computed from the timestamp's fields.
Parsing turns the pattern into an anchored regular expression with one named group per field,
extracts the fields with ``pc.extract_regex`` and builds the timestamp from them; a string that
does not match, or names an impossible date, parses to NULL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.expr.civil import PER_SECOND, days_from_civil, i64, valid_date

_STRFTIME = {
    ("y", 2): "%y",
    ("M", 2): "%m",
    ("M", 3): "%b",
    ("d", 2): "%d",
    ("H", 2): "%H",
    ("h", 2): "%I",
    ("m", 2): "%M",
    ("s", 2): "%S",
    ("a", 1): "%p",
    ("E", 1): "%a",
    ("E", 2): "%a",
    ("E", 3): "%a",
    ("D", 3): "%j",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


class PatternError(ValueError):
    """The pattern uses a letter this module does not support."""


def tokens(pattern: str) -> list[tuple[str, int | str]]:
    """``[(letter, count) | ('', literal text)]``.

    >>> tokens("yyyy-MM 'at' H")
    [('y', 4), ('', '-'), ('M', 2), ('', ' at '), ('H', 1)]
    """
    out: list[tuple[str, int | str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            end = len(pattern) if end < 0 else end
            out.append(("", pattern[i + 1 : end] if end > i + 1 else "'"))
            i = end + 1
        elif ch.isascii() and ch.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            out.append((ch, j - i))
            i = j
        else:
            out.append(("", ch))
            i += 1
    merged: list[tuple[str, int | str]] = []
    for tok in out:
        if tok[0] == "" and merged and merged[-1][0] == "":
            merged[-1] = ("", str(merged[-1][1]) + str(tok[1]))
        else:
            merged.append(tok)
    return merged


# -- formatting --------------------------------------------------------------------------


def _strftime_code(letter: str, count: int) -> str | None:
    if letter == "y":
        return "%y" if count == 2 else "%Y"
    if letter == "M" and count >= 4:
        return "%B"
    if letter == "E" and count >= 4:
        return "%A"
    return _STRFTIME.get((letter, count))


def _field_text(letter: str, count: int) -> Callable[[pa.Array], pa.Array]:
    """A function rendering one non-strftime field of a timestamp array as strings."""

    def padded(values: pa.Array) -> pa.Array:
        text = pc.cast(values, pa.string())
        return pc.utf8_lpad(text, count, "0") if count > 1 else text

    match letter:
        case "M":
            return lambda ts: padded(pc.month(ts))
        case "d":
            return lambda ts: padded(pc.day(ts))
        case "H":
            return lambda ts: padded(pc.hour(ts))
        case "h":
            return lambda ts: padded(pc.add(pc.remainder(pc.add(pc.hour(ts), 11), 12), 1))
        case "m":
            return lambda ts: padded(pc.minute(ts))
        case "s":
            return lambda ts: padded(pc.second(ts))
        case "D":
            return lambda ts: padded(pc.day_of_year(ts))
        case "u":
            return lambda ts: padded(pc.day_of_week(ts, count_from_zero=False))
        case "S":
            return lambda ts: _fraction(ts, count)
    raise PatternError(f"unsupported pattern letter '{letter}'")


def _fraction(ts: pa.Array, digits: int) -> pa.Array:
    nanos = pc.add(
        pc.add(
            pc.multiply(i64(pc.millisecond(ts)), 1_000_000),
            pc.multiply(i64(pc.microsecond(ts)), 1000),
        ),
        i64(pc.nanosecond(ts)),
    )
    text = pc.utf8_lpad(pc.cast(nanos, pa.string()), 9, "0")
    return (
        pc.utf8_slice_codeunits(text, 0, digits) if digits <= 9 else pc.utf8_rpad(text, digits, "0")
    )


@functools.lru_cache(maxsize=256)
def formatter(pattern: str) -> Callable[[pa.Array], pa.Array]:
    """A function that renders a naive timestamp array with the Java pattern.

    >>> import datetime as dt
    >>> ts = pa.array([dt.datetime(2020, 4, 15, 8, 5, 0, 123000)], pa.timestamp("ms"))
    >>> formatter("yyyy-MM-dd HH:mm:ss.SSS")(ts).to_pylist()
    ['2020-04-15 08:05:00.123']
    """
    parts: list[Callable[[pa.Array], pa.Array] | str] = []
    fmt = ""
    for letter, count in tokens(pattern):
        if letter == "":
            fmt += str(count).replace("%", "%%")
            continue
        code = _strftime_code(letter, int(count))
        if code is not None:
            fmt += code
            continue
        if fmt:
            parts.append(fmt)
            fmt = ""
        parts.append(_field_text(letter, int(count)))
    if fmt:
        parts.append(fmt)

    def render(ts: pa.Array) -> pa.Array:
        if ts.type.unit != "s":
            # strftime prints %S with the fraction of the unit; Java 'ss' has none
            whole = pc.cast(pc.floor_temporal(ts, unit="second"), pa.timestamp("s"))
        else:
            whole = ts
        pieces = [
            pc.strftime(whole, format=p, locale="C") if isinstance(p, str) else p(ts) for p in parts
        ]
        if len(pieces) == 1:
            return pieces[0]
        return pc.binary_join_element_wise(*pieces, "")

    return render


# -- parsing -----------------------------------------------------------------------------


_NUMERIC = {"y": "year", "M": "month", "d": "day", "H": "hour", "h": "hour12", "m": "minute"}
_NUMERIC |= {"s": "second"}


def _group(letter: str, count: int, exact: bool) -> str:
    """The regex group of one pattern letter; ``exact`` when a number adjoins another."""
    if letter == "y" and count == 2:
        return r"(?P<yy>\d{2})"
    if letter == "M" and count >= 3:
        return r"(?P<mon>[A-Za-z]{3,9})"
    if letter in _NUMERIC:
        width = f"{{{count}}}" if exact else (f"{{{count},9}}" if letter == "y" else "{1,2}")
        return rf"(?P<{_NUMERIC[letter]}>\d{width})"
    if letter == "S":
        return rf"(?P<frac>\d{{{count}}})"
    if letter == "a":
        return r"(?P<ampm>[AaPp][Mm])"
    if letter == "E":
        return r"[A-Za-z]{3,9}"
    raise PatternError(f"unsupported pattern letter '{letter}'")


@functools.lru_cache(maxsize=256)
def parse_regex(pattern: str) -> str:
    """The anchored RE2 pattern that parses strings in the Java date pattern.

    >>> import re
    >>> bool(re.match(parse_regex("yyyyMMdd HH:mm"), "20200415 08:05"))
    True
    """
    toks = tokens(pattern)
    body = ""
    seen: set[str] = set()
    for i, (letter, count) in enumerate(toks):
        if letter == "":
            body += re.escape(str(count))
            continue
        near = [toks[j][0] for j in (i - 1, i + 1) if 0 <= j < len(toks)]
        exact = any(n in _NUMERIC or n == "S" for n in near)
        group = _group(letter, int(count), exact)
        name = re.match(r"\(\?P<(\w+)>", group)
        if name and name.group(1) in seen:
            group = re.sub(r"\?P<\w+>", "?:", group, count=1)
        elif name:
            seen.add(name.group(1))
        body += group
    return r"^\s*" + body + r"\s*$"


def _int_field(fields: pa.StructArray, names: list[str], name: str, default: int) -> pa.Array:
    if name not in names:
        return pa.repeat(pa.scalar(default, pa.int64()), len(fields))
    text = pc.struct_field(fields, [names.index(name)])
    return pc.cast(pc.if_else(pc.equal(text, ""), str(default), text), pa.int64())


def fields_to_timestamp(fields: pa.StructArray, unit: str = "ms") -> pa.Array:
    """Build a naive timestamp from extracted text fields; NULL where a field is out of range.

    Field names: year | yy, month | mon, day, hour | hour12 + ampm, minute, second, frac.
    """
    names = [f.name for f in fields.type]
    if "yy" in names:
        year = pc.add(_int_field(fields, names, "yy", 70), 2000)
    else:
        year = _int_field(fields, names, "year", 1970)
    if "mon" in names:
        text = pc.utf8_slice_codeunits(
            pc.utf8_lower(pc.struct_field(fields, [names.index("mon")])), 0, 3
        )
        month = pc.add(i64(pc.index_in(text, value_set=pa.array(_MONTHS))), 1)
    else:
        month = _int_field(fields, names, "month", 1)
    day = _int_field(fields, names, "day", 1)
    if "hour12" in names:
        h12 = _int_field(fields, names, "hour12", 12)
        pm = (
            pc.equal(pc.utf8_lower(pc.struct_field(fields, [names.index("ampm")])), "pm")
            if ("ampm" in names)
            else pa.repeat(pa.scalar(False), len(fields))
        )
        hour = pc.add(pc.remainder(h12, 12), pc.multiply(pc.cast(pm, pa.int64()), 12))
        hour = pc.if_else(
            pc.or_(pc.less(h12, 1), pc.greater(h12, 12)), pa.scalar(None, pa.int64()), hour
        )
    else:
        hour = _int_field(fields, names, "hour", 0)
    minute = _int_field(fields, names, "minute", 0)
    second = _int_field(fields, names, "second", 0)
    per = PER_SECOND[unit]
    if "frac" in names:
        digits = len(str(per)) - 1
        text = pc.struct_field(fields, [names.index("frac")])
        text = pc.utf8_slice_codeunits(pc.utf8_rpad(text, 9, "0"), 0, digits)
        frac = (
            pc.cast(text, pa.int64())
            if digits
            else pa.repeat(pa.scalar(0, pa.int64()), len(fields))
        )
    else:
        frac = pa.repeat(pa.scalar(0, pa.int64()), len(fields))
    ok = pc.and_(
        valid_date(year, month, day),
        pc.and_(
            pc.and_(pc.less(hour, 24), pc.less(minute, 60)),
            pc.and_(pc.less(second, 60), pc.greater_equal(hour, 0)),
        ),
    )
    days = days_from_civil(year, pc.if_else(ok, month, 1), pc.if_else(ok, day, 1))
    secs = pc.add(
        pc.add(pc.multiply(days, 86_400), pc.multiply(hour, 3600)),
        pc.add(pc.multiply(minute, 60), second),
    )
    value = pc.add(pc.multiply(secs, per), frac)
    value = pc.if_else(ok, value, pa.scalar(None, pa.int64()))
    return pc.cast(value, pa.timestamp(unit))


def parse(strings: pa.Array, regex: str, unit: str = "ms") -> pa.Array:
    """Parse strings with an anchored named-group regex into naive timestamps (NULL: no match)."""
    if len(strings) == 0:
        return pa.array([], pa.timestamp(unit))
    fields = pc.extract_regex(strings, pattern=regex)
    return fields_to_timestamp(fields, unit)


@functools.lru_cache(maxsize=256)
def parser(pattern: str, unit: str = "ms") -> Callable[[pa.Array], pa.Array]:
    """A function that parses a string array with the Java pattern into naive timestamps.

    >>> parser("dd/MM/yyyy HH:mm")(pa.array(["15/04/2020 08:05", "junk"])).to_pylist()
    [datetime.datetime(2020, 4, 15, 8, 5), None]
    """
    regex = parse_regex(pattern)
    return lambda strings: parse(strings, regex, unit)
