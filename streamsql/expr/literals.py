"""Literals: SQL text -> typed Arrow scalars, and back (:func:`literal_expr`, for folding).

Flink's literal types: an integer is INT when it fits, else BIGINT (else DECIMAL(n, 0)); ``1.5``
is an exact DECIMAL(2, 1); ``1e3`` is DOUBLE; ``'x'`` is STRING; NULL has the null type.
"""

from __future__ import annotations

import decimal
import math

import pyarrow as pa
import pyarrow.types as pt
from sqlglot import exp

from streamsql.errors import StreamSQLError
from streamsql.expr import registry
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node
from streamsql.parser.dialect import Flink
from streamsql.types import sql_type_name

_INT32 = 2**31
_INT64 = 2**63


def number_scalar(text: str) -> pa.Scalar:
    """The typed scalar of a numeric literal's text.

    >>> number_scalar("1.50").type
    Decimal128Type(decimal128(3, 2))
    """
    if any(ch in text for ch in "eE") or text.lower() in ("nan", "inf", "infinity"):
        return pa.scalar(float(text), pa.float64())
    if "." in text:
        value = decimal.Decimal(text)
        _, digits, exponent = value.as_tuple()
        scale = max(0, -int(exponent))
        precision = max(len(digits), scale, 1)
        if precision > 38:
            return pa.scalar(float(text), pa.float64())
        return pa.scalar(value, pa.decimal128(precision, scale))
    value = int(text)
    if -_INT32 <= value < _INT32:
        return pa.scalar(value, pa.int32())
    if -_INT64 <= value < _INT64:
        return pa.scalar(value, pa.int64())
    if len(str(abs(value))) <= 38:
        return pa.scalar(value, pa.decimal128(len(str(abs(value))), 0))
    return pa.scalar(float(value), pa.float64())


@registry.handles(exp.Literal)
def _literal(c: Compiler, e: exp.Literal) -> Node:
    if e.is_string:
        return c.constant(e, pa.scalar(e.this, pa.string()))
    try:
        return c.constant(e, number_scalar(e.this))
    except (ValueError, decimal.InvalidOperation) as err:
        raise c.error(f"malformed number {e.this!r}", e) from err


@registry.handles(exp.Boolean)
def _boolean(c: Compiler, e: exp.Boolean) -> Node:
    return c.constant(e, pa.scalar(bool(e.this), pa.bool_()))


@registry.handles(exp.Null)
def _null(c: Compiler, e: exp.Null) -> Node:
    return c.constant(e, pa.scalar(None, pa.null()))


# -- folding back to SQL -----------------------------------------------------------------


def _candidate(value: pa.Scalar) -> exp.Expression | None:
    """A SQL expression meant to evaluate to ``value`` (checked by the caller)."""
    t = value.type
    v = value.as_py()
    if pt.is_null(t):
        return exp.Null()
    if v is None:
        return _typed(exp.Null(), t)
    if pt.is_boolean(t):
        return exp.Boolean(this=bool(v))
    if pt.is_integer(t):
        lit = _signed(exp.Literal.number(abs(v)), v < 0)
        return lit if pt.is_int32(t) else _typed(lit, t)
    if pt.is_floating(t):
        if v != v or v in (float("inf"), float("-inf")):
            text = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            return _typed(exp.Literal.string(text), t)
        text = repr(abs(float(v)))
        text = text if "e" in text else text + "E0"
        lit = _signed(exp.Literal.number(text), v < 0 or str(v).startswith("-"))
        return lit if pt.is_float64(t) else _typed(lit, t)
    if pt.is_decimal(t):
        text = format(abs(v), "f")
        lit = _signed(exp.Literal.number(text), v < 0)
        return lit if number_scalar(text).type == t else _typed(lit, t)
    if pt.is_string(t) or pt.is_large_string(t):
        return exp.Literal.string(v)
    if pt.is_date(t):
        return _typed(exp.Literal.string(v.isoformat()), t)
    if pt.is_time(t):
        return _typed(exp.Literal.string(v.isoformat()), pa.time32("ms"))
    if pt.is_timestamp(t) and t.tz is None:
        return _typed(exp.Literal.string(_timestamp_text(value)), t)
    if pt.is_timestamp(t) and t.unit in ("s", "ms"):
        epoch = value.cast(pa.int64()).as_py()
        precision = 0 if t.unit == "s" else 3
        call = exp.Anonymous(
            this="TO_TIMESTAMP_LTZ",
            expressions=[
                _signed(exp.Literal.number(abs(epoch)), epoch < 0),
                exp.Literal.number(precision),
            ],
        )
        return call if t.unit == "ms" else _typed(call, t)
    if pt.is_duration(t):
        ms = (
            value.cast(pa.duration("ms")).cast(pa.int64()).as_py()
            if t.unit != "ms"
            else value.value
        )
        secs = decimal.Decimal(ms) / 1000
        return exp.Interval(this=exp.Literal.string(format(secs, "f")), unit=exp.Var(this="SECOND"))
    if pt.is_list(t) and v:
        items = [_candidate(value.values[i]) for i in range(len(value.values))]
        return None if any(i is None for i in items) else exp.Array(expressions=items)
    return None


def _signed(lit: exp.Expression, negative: bool) -> exp.Expression:
    return exp.Neg(this=lit) if negative else lit


def _typed(inner: exp.Expression, t: pa.DataType) -> exp.Expression:
    return exp.Cast(this=inner, to=exp.DataType.build(sql_type_name(t), dialect=Flink))


def _timestamp_text(value: pa.Scalar) -> str:
    # Arrow's string cast prints exactly the fraction digits of the unit ('...00:00:00.123456')
    return pa.array([value]).cast(pa.string())[0].as_py()


def literal_expr(value: pa.Scalar) -> exp.Expression | None:
    """A SQL expression that compiles back to ``value`` with the same type, or None.

    Bare literals are wrapped in CAST where they would type differently.

    >>> from streamsql.parser.dialect import to_sql
    >>> to_sql(literal_expr(pa.scalar(5, pa.int64())))
    'CAST(5 AS BIGINT)'
    """
    try:
        candidate = _candidate(value)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    if candidate is None:
        return None
    try:
        node = Compiler(pa.schema([])).compile(candidate)
    except (StreamSQLError, pa.ArrowException):
        return None
    if node.const is None or node.type != value.type or not _same(node.const, value):
        return None
    return candidate


def _same(a: pa.Scalar, b: pa.Scalar) -> bool:
    x, y = a.as_py(), b.as_py()
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y and a.is_valid == b.is_valid
