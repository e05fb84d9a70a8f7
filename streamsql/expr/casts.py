"""CAST, TRY_CAST and implicit conversions between the SQL types of ``streamsql.types``.

Flink semantics: CAST of a malformed string fails the job (ExecError naming the value) and
TRY_CAST gives NULL; numbers narrow like Java (fractions truncate toward zero, integers wrap);
a value that does not fit a DECIMAL becomes NULL; decimals round HALF_UP; conversions between
TIMESTAMP and TIMESTAMP_LTZ (and to/from STRING, DATE, TIME) use the session time zone.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.errors import ExecError
from streamsql.expr import registry
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import EvalContext, Node, Value, as_array, is_scalar, null_of
from streamsql.expr.promote import as_decimal, is_numeric, is_string
from streamsql.expr.sqltypes import arrow_type
from streamsql.expr.textformat import from_local, to_local, to_text
from streamsql.expr.textparse import from_text
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.types import sql_type_name

_INT_LIMITS = {8: 2**31, 16: 2**31, 32: 2**31, 64: 2**63}


def _scalar_like(kind: str, t: pa.DataType) -> bool:
    return {
        "text": is_string(t),
        "number": is_numeric(t) or pt.is_boolean(t),
        "temporal": pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t),
    }[kind]


def castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether CAST(src AS dst) is allowed."""
    if src == dst or pt.is_null(src):
        return True
    atomic = src if not pt.is_dictionary(src) else src.value_type
    if is_string(dst):
        return not (pt.is_nested(atomic) or pt.is_duration(atomic) or pt.is_interval(atomic))
    if is_string(atomic):
        return not pt.is_nested(dst)
    if _scalar_like("number", atomic) and _scalar_like("number", dst):
        return True
    if pt.is_integer(atomic) and pt.is_timestamp(dst) and dst.tz:
        return True
    if pt.is_timestamp(atomic):
        return pt.is_timestamp(dst) or pt.is_date(dst) or pt.is_time(dst)
    if pt.is_date(atomic):
        return pt.is_timestamp(dst)
    if pt.is_binary(atomic) or pt.is_large_binary(atomic):
        return pt.is_binary(dst) or pt.is_large_binary(dst)
    if pt.is_list(atomic) and pt.is_list(dst):
        return castable(atomic.value_type, dst.value_type)
    return pt.is_duration(atomic) and pt.is_duration(dst)


def needs_context(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether the conversion reads the session time zone."""
    zoned = [t for t in (src, dst) if pt.is_timestamp(t) and t.tz]
    return bool(zoned) and src != dst


def can_fail(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether a strict CAST may raise on some value."""
    return is_string(src) and not is_string(dst)


def convert(v: Value, src: pa.DataType, dst: pa.DataType, ctx: EvalContext) -> Value:
    """``v`` (of type ``src``) as ``dst``; unparsable strings become NULL."""
    if src == dst:
        return v
    if is_scalar(v):
        if not v.is_valid:
            return null_of(dst)
        return convert(as_array(v, 1), src, dst, ctx)[0]
    if pt.is_null(src):
        return pa.nulls(len(v), dst)
    if pt.is_dictionary(src):
        return convert(v.dictionary_decode(), src.value_type, dst, ctx)
    if is_string(dst):
        return to_text(v, src, ctx)
    if is_string(src):
        return from_text(v, dst, ctx)
    if pt.is_boolean(dst):
        return pc.not_equal(v, pa.scalar(0, src)) if not pt.is_boolean(src) else v
    if is_numeric(dst):
        return _to_number(v, src, dst)
    if pt.is_timestamp(dst):
        return _to_timestamp(v, src, dst, ctx)
    if pt.is_date(dst) or pt.is_time(dst):
        naive = to_local(v, ctx) if pt.is_timestamp(src) and src.tz else v
        return pc.cast(naive, dst)
    return pc.cast(v, dst)


def _to_number(v: pa.Array, src: pa.DataType, dst: pa.DataType) -> pa.Array:
    if pt.is_boolean(src):
        v, src = pc.cast(v, pa.int8()), pa.int8()
    if pt.is_decimal(dst):
        return _to_decimal(v, src, dst)
    if pt.is_integer(dst) and pt.is_floating(src):
        # Java: NaN -> 0, out of range saturates (to INT first for the small types), then wraps
        limit = float(_INT_LIMITS[dst.bit_width])
        v = pc.if_else(pc.is_nan(v), 0.0, pc.trunc(v))
        top = limit - 1024 if limit > 2**53 else limit - 1
        v = pc.max_element_wise(
            pc.min_element_wise(v, top, skip_nulls=False), -limit, skip_nulls=False
        )
        wide = pa.int64() if dst.bit_width == 64 else pa.int32()
        return pc.cast(pc.cast(v, wide, safe=False), dst, safe=False)
    return pc.cast(v, dst, safe=False)


def _to_decimal(v: pa.Array, src: pa.DataType, dst: pa.DataType) -> pa.Array:
    limit = 10 ** (dst.precision - dst.scale)
    if pt.is_integer(src):
        src = as_decimal(src)
        v = pc.cast(v, src)
    if pt.is_floating(src):
        v = pc.round(v, dst.scale, round_mode="half_towards_infinity")
        fits = pc.less(pc.abs(v), float(limit))
    elif pt.is_decimal(src):
        if src.scale > dst.scale:
            v = pc.round(v, dst.scale, round_mode="half_towards_infinity")
        digits = src.precision - src.scale
        fits = (
            pc.less(pc.abs(v), pa.scalar(limit, pa.decimal128(38, 0)).cast(src))
            if len(str(limit)) - 1 < digits
            else None
        )
    else:
        fits = None
    if fits is not None:
        v = pc.if_else(fits, v, null_of(v.type))
    return pc.cast(v, dst)


def _to_timestamp(v: pa.Array, src: pa.DataType, dst: pa.DataType, ctx: EvalContext) -> pa.Array:
    naive_dst = pa.timestamp(dst.unit)
    if pt.is_integer(src):  # epoch seconds -> TIMESTAMP_LTZ
        millis = pc.multiply(pc.cast(v, pa.int64()), 1000)
        return pc.cast(pc.cast(millis, pa.timestamp("ms", tz="UTC")), dst)
    if pt.is_date(src):
        naive = pc.cast(v, naive_dst)
    elif src.tz is not None:
        naive = to_local(v, ctx) if dst.tz is None else v
    else:
        naive = v
    if _finer(naive.type.unit, dst.unit):
        naive = pc.floor_temporal(naive, unit=_UNIT_NAMES[dst.unit])
    src_zoned = pt.is_timestamp(src) and src.tz is not None
    out = pc.cast(naive, dst if src_zoned and dst.tz else naive_dst, safe=False)
    if dst.tz and not src_zoned:
        return from_local(out, ctx)
    return out


_UNIT_NAMES = {"s": "second", "ms": "millisecond", "us": "microsecond", "ns": "nanosecond"}


def _finer(unit: str, than: str) -> bool:
    order = ("s", "ms", "us", "ns")
    return order.index(unit) > order.index(than)


# -- compiling ---------------------------------------------------------------------------


def cast_node(
    c: Compiler, e: exp.Expression, node: Node, dst: pa.DataType, *, strict: bool
) -> Node:
    """A node converting ``node`` to ``dst`` (CAST if ``strict``, else TRY_CAST)."""
    src = node.type
    if src == dst:
        return node
    if not castable(src, dst):
        raise c.error(
            f"cannot CAST {sql_type_name(src)} to {sql_type_name(dst)}", e, hint=_hint(src, dst)
        )
    inner = node.fn
    check = strict and can_fail(src, dst)

    def fn(batch: pa.RecordBatch, ctx: EvalContext) -> Value:
        v = inner(batch, ctx)
        out = convert(v, src, dst, ctx)
        if check:
            _raise_on_bad(v, out, dst, e)
        return out

    return c.make(e, fn, [node], contextual=needs_context(src, dst), can_fail=check)


def _raise_on_bad(v: Value, out: Value, dst: pa.DataType, e: exp.Expression) -> None:
    if is_scalar(v):
        if v.is_valid and not out.is_valid:
            _fail(v.as_py(), dst, e)
        return
    if out.null_count == v.null_count:
        return
    bad = pc.and_(pc.is_valid(v), pc.is_null(out))
    first = pc.index(bad, True).as_py()
    _fail(v[first].as_py(), dst, e)


def _fail(value: object, dst: pa.DataType, e: exp.Expression) -> None:
    raise ExecError(
        f"cannot CAST {value!r} to {sql_type_name(dst)} in {to_sql(e)}",
        span=span_of(e),
        hint="TRY_CAST gives NULL for values that do not convert",
    )


def _hint(src: pa.DataType, dst: pa.DataType) -> str | None:
    if pt.is_timestamp(src) and is_numeric(dst):
        return "use UNIX_TIMESTAMP(CAST(ts AS STRING)) or EXTRACT(EPOCH FROM ts) for epoch seconds"
    if is_numeric(src) and pt.is_timestamp(dst):
        return "use TO_TIMESTAMP_LTZ(epoch, 0 or 3) to read epoch seconds or milliseconds"
    return None


def literal_timestamp_type(e: exp.Cast) -> pa.DataType | None:
    """The type of a ``TIMESTAMP '...'`` literal: milliseconds, or finer if it has more digits.

    sqlglot reads the literal as a CAST without precision; unlike an explicit CAST (which has a
    ``safe`` argument slot) it carries only ``this`` and ``to``.
    """
    to = e.args["to"]
    if "safe" in e.args or to.this != exp.DType.TIMESTAMP or to.expressions:
        return None
    if not (isinstance(e.this, exp.Literal) and e.this.is_string):
        return None
    _, _, fraction = e.this.this.partition(".")
    digits = len(fraction.strip())
    return pa.timestamp("ms" if digits <= 3 else "us" if digits <= 6 else "ns")


@registry.handles(exp.Cast, exp.TryCast, names=("CAST", "TRY_CAST"))
def _cast(c: Compiler, e: exp.Cast) -> Node:
    dst = literal_timestamp_type(e) or arrow_type(e.args["to"], e)
    strict = not isinstance(e, exp.TryCast) and not e.args.get("safe")
    return cast_node(c, e, c.compile(e.this), dst, strict=strict)


def coerce(c: Compiler, node: Node, dst: pa.DataType) -> Node:
    """``node`` implicitly converted to ``dst`` (numeric widening, NULL, dates, time units)."""
    if node.type == dst:
        return node
    if node.is_const:
        try:
            value = convert(node.const, node.type, dst, EvalContext())
        except (pa.ArrowException, ValueError, TypeError) as err:
            raise c.error(
                f"cannot convert {to_sql(node.expr)} to {sql_type_name(dst)}", node.expr
            ) from err
        if node.const.is_valid and not value.is_valid and is_string(node.type):
            raise c.error(f"cannot convert {to_sql(node.expr)} to {sql_type_name(dst)}", node.expr)
        if not needs_context(node.type, dst):
            return c.constant(node.expr, value)
    src, inner = node.type, node.fn
    return dataclasses.replace(
        node,
        fn=lambda b, ctx: convert(inner(b, ctx), src, dst, ctx),
        type=dst,
        contextual=node.contextual or needs_context(src, dst),
        const=None,
    )
