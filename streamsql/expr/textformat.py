"""Values -> STRING the way Flink prints them (CAST(x AS STRING), ``||`` on non-strings).

BOOLEAN prints TRUE/FALSE; DOUBLE and FLOAT follow Java's ``Double.toString`` (``1.0``,
``1.0E20``, ``1.0E-5``, ``NaN``, ``Infinity``); TIMESTAMP(p) prints ``yyyy-MM-dd HH:mm:ss`` with p
fraction digits; TIMESTAMP_LTZ prints the wall time of the session time zone; TIME prints
``HH:mm:ss``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt

from streamsql.expr.node import EvalContext
from streamsql.expr.promote import is_string

_REPR = r"^(?P<sign>-?)(?P<int>\d+)(?:\.(?P<frac>\d+))?(?:e(?P<exp>[+-]?\d+))?$"
_STR = pa.string()


def to_local(ts: pa.Array, ctx: EvalContext) -> pa.Array:
    """A TIMESTAMP_LTZ array as naive wall-clock time of the session time zone."""
    zoned = pc.cast(ts, pa.timestamp(ts.type.unit, tz=ctx.time_zone))
    return pc.local_timestamp(zoned)


def from_local(ts: pa.Array, ctx: EvalContext) -> pa.Array:
    """Naive wall-clock time of the session time zone as TIMESTAMP_LTZ (UTC instants)."""
    zoned = pc.assume_timezone(ts, ctx.time_zone, ambiguous="earliest", nonexistent="earliest")
    return pc.cast(zoned, pa.timestamp(ts.type.unit, tz="UTC"))


def java_double_text(values: pa.Array) -> pa.Array:
    """Floats as Java's ``Double.toString`` spells them.

    >>> java_double_text(pa.array([1.0, 1e20, 0.00001, 2.5, 12345678.0])).to_pylist()
    ['1.0', '1.0E20', '1.0E-5', '2.5', '1.2345678E7']
    """
    text = pc.cast(values, _STR)
    parts = pc.extract_regex(text, pattern=_REPR)
    sign, int_part, frac, exp = (pc.struct_field(parts, [i]) for i in range(4))
    digits = pc.binary_join_element_wise(int_part, frac, "")
    significant = pc.utf8_ltrim(digits, "0")
    leading = pc.subtract(pc.utf8_length(digits), pc.utf8_length(significant))
    exp = pc.utf8_ltrim(exp, "+")
    exponent = pc.cast(pc.if_else(pc.equal(exp, ""), "0", exp), pa.int32())
    e10 = pc.add(pc.subtract(pc.subtract(pc.utf8_length(int_part), 1), leading), exponent)
    significant = pc.utf8_rtrim(significant, "0")
    rest = pc.utf8_slice_codeunits(significant, 1)
    scientific = pc.binary_join_element_wise(
        sign,
        pc.utf8_slice_codeunits(significant, 0, 1),
        ".",
        pc.if_else(pc.equal(rest, ""), "0", rest),
        "E",
        pc.cast(e10, _STR),
        "",
    )
    plain = pc.if_else(pc.equal(frac, ""), pc.binary_join_element_wise(text, ".0", ""), text)
    is_zero = pc.equal(significant, "")
    use_plain = pc.or_(is_zero, pc.and_(pc.greater_equal(e10, -3), pc.less(e10, 7)))
    finite = pc.if_else(
        is_zero,
        pc.binary_join_element_wise(sign, "0.0", ""),
        pc.if_else(use_plain, plain, scientific),
    )
    special = pc.if_else(
        pc.is_nan(values), "NaN", pc.if_else(pc.greater(values, 0), "Infinity", "-Infinity")
    )
    return pc.if_else(pc.is_finite(values), finite, special)


def to_text(values: pa.Array, src: pa.DataType, ctx: EvalContext) -> pa.Array:
    """``values`` of type ``src`` rendered as strings."""
    if is_string(src):
        return pc.cast(values, _STR)
    if pt.is_boolean(src):
        return pc.if_else(values, "TRUE", "FALSE")
    if pt.is_floating(src):
        return java_double_text(values)
    if pt.is_time(src):
        return pc.utf8_slice_codeunits(pc.cast(values, _STR), 0, 8)
    if pt.is_timestamp(src):
        naive = to_local(values, ctx) if src.tz else values
        return pc.cast(naive, _STR)
    return pc.cast(values, _STR)
