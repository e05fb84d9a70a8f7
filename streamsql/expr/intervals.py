"""INTERVAL literals: day-time intervals are ``duration('ms')`` values, year-month intervals
``month_day_nano_interval`` values (whole months, added with calendar arithmetic).

Accepted spellings: ``INTERVAL '10' SECOND``, plural units, ``'1.5' SECOND``, ``SECOND(3)``,
``INTERVAL '00:01:30' HOUR TO SECOND`` and the other ``X TO Y`` spans, ``INTERVAL '1-6' YEAR TO
MONTH``, and the unit inside the string (``INTERVAL '10 seconds'``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import BindError
from streamsql.expr import registry
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of

UNIT_MS = {
    "MILLISECOND": 1,
    "SECOND": 1_000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
    "WEEK": 7 * 86_400_000,
}
UNIT_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}
_DAY_TIME = ("DAY", "HOUR", "MINUTE", "SECOND")


def unit_name(u: exp.Expression | str | None) -> str | None:
    """The singular upper-case unit a sqlglot unit node stands for (``Var(SECONDS)`` -> SECOND)."""
    if u is None:
        return None
    if isinstance(u, exp.Func) and not isinstance(u, exp.Anonymous):
        text = u.sql_name()
    else:
        text = u if isinstance(u, str) else u.name
    text = text.upper()
    if text.endswith("S") and text[:-1] in {*UNIT_MS, *UNIT_MONTHS}:
        text = text[:-1]
    return text if text in UNIT_MS or text in UNIT_MONTHS else None


def _span_units(unit: exp.Expression) -> tuple[str | None, str | None]:
    if isinstance(unit, exp.IntervalSpan):
        return unit_name(unit.this), unit_name(unit.expression)
    name = unit_name(unit)
    return name, name


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation as err:
        raise ValueError(f"malformed interval value {text!r}") from err


def parse_interval(e: exp.Interval) -> tuple[str, int]:
    """``('ms', milliseconds)`` or ``('months', months)`` of an interval literal."""
    value = e.this
    if not isinstance(value, exp.Literal):
        raise ValueError("the interval value must be a literal")
    text = str(value.this).strip()
    unit = e.args.get("unit")
    if unit is None:
        m = re.fullmatch(r"([+-]?[\d.]+)\s*([A-Za-z]+)", text)
        if not m:
            raise ValueError(f"malformed interval {text!r}")
        text, unit = m.group(1), exp.Var(this=m.group(2))
    first, last = _span_units(unit)
    if first is None or last is None:
        raise ValueError(f"unknown interval unit {to_sql(unit)}")
    if first == last:
        if first in UNIT_MONTHS:
            return "months", int(_amount(text) * UNIT_MONTHS[first])
        return "ms", int(_amount(text) * UNIT_MS[first])
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if first == "YEAR" and last == "MONTH":
        years, _, months = text.partition("-")
        return "months", sign * (int(years) * 12 + int(months or 0))
    if first not in _DAY_TIME or last not in _DAY_TIME:
        raise ValueError(f"unsupported interval span {first} TO {last}")
    units = _DAY_TIME[_DAY_TIME.index(first) : _DAY_TIME.index(last) + 1]
    parts = re.split(r"[ :]", text)
    if len(parts) != len(units):
        raise ValueError(f"interval {text!r} does not match {first} TO {last}")
    total = sum(_amount(p) * UNIT_MS[u] for p, u in zip(parts, units, strict=True))
    return "ms", sign * int(total)


def interval_ms(expr: exp.Expression) -> int:
    """The length of a constant day-time interval in milliseconds.

    >>> import sqlglot
    >>> from streamsql.parser.dialect import Flink
    >>> interval_ms(sqlglot.parse_one("SELECT INTERVAL '1' MINUTE", read=Flink).expressions[0])
    60000
    """
    e = expr
    negate = False
    while isinstance(e, (exp.Paren, exp.Neg)):
        negate ^= isinstance(e, exp.Neg)
        e = e.this
    if not isinstance(e, exp.Interval):
        raise BindError(
            f"expected a constant INTERVAL, got {to_sql(expr)}",
            span=span_of(expr),
            hint="write e.g. INTERVAL '10' SECOND",
        )
    try:
        kind, amount = parse_interval(e)
    except ValueError as err:
        raise BindError(str(err), span=span_of(expr)) from err
    if kind != "ms":
        raise BindError(
            f"{to_sql(e)} has no fixed length in milliseconds",
            span=span_of(expr),
            hint="use a day-time interval (DAY, HOUR, MINUTE, SECOND)",
        )
    return -amount if negate else amount


@registry.handles(exp.Interval)
def _interval(c: Compiler, e: exp.Interval) -> Node:
    try:
        kind, amount = parse_interval(e)
    except ValueError as err:
        raise c.error(str(err), e) from err
    if kind == "months":
        return c.constant(e, pa.scalar((amount, 0, 0), pa.month_day_nano_interval()))
    return c.constant(e, pa.scalar(amount, pa.duration("ms")))
