"""Implicit type promotion: the common type of operands, as Flink's type system merges them.

Numbers widen along TINYINT < SMALLINT < INT < BIGINT < DECIMAL < FLOAT < DOUBLE (an integer
meeting a DECIMAL becomes DECIMAL(p, 0) with p = 3, 5, 10, 19; a DECIMAL meeting FLOAT or DOUBLE
becomes DOUBLE); timestamps take the finer unit, a DATE meeting a TIMESTAMP becomes a TIMESTAMP;
NULL (the null type) unifies with anything.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.types as pt

#: Decimal precision that holds every value of an integer type.
INT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}
MAX_PRECISION = 38
_UNITS = ("s", "ms", "us", "ns")


def is_int(t: pa.DataType) -> bool:
    return pt.is_integer(t)


def is_numeric(t: pa.DataType) -> bool:
    return pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t)


def is_string(t: pa.DataType) -> bool:
    return pt.is_string(t) or pt.is_large_string(t)


def is_temporal(t: pa.DataType) -> bool:
    return pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t)


def is_null(t: pa.DataType) -> bool:
    return pt.is_null(t)


def as_decimal(t: pa.DataType) -> pa.DataType:
    """An integer or decimal type as a decimal."""
    if pt.is_decimal(t):
        return t
    return pa.decimal128(INT_DIGITS[t.bit_width], 0)


def decimal(precision: int, scale: int) -> pa.DataType:
    """A decimal type, capped at 38 digits the way Flink adjusts precision and scale."""
    if precision <= MAX_PRECISION:
        return pa.decimal128(max(1, precision), scale)
    digits = precision - scale
    return pa.decimal128(MAX_PRECISION, max(MAX_PRECISION - digits, min(scale, 6)))


def merge_decimals(types: list[pa.DataType]) -> pa.DataType:
    """The decimal type that holds every value of the given integer/decimal types."""
    decs = [as_decimal(t) for t in types]
    scale = max(d.scale for d in decs)
    digits = max(d.precision - d.scale for d in decs)
    return (
        decimal(digits + scale, scale)
        if digits + scale <= MAX_PRECISION
        else pa.decimal128(MAX_PRECISION, max(0, MAX_PRECISION - digits))
    )


def common_numeric(types: list[pa.DataType]) -> pa.DataType:
    """The common type of numeric types."""
    if any(pt.is_float64(t) for t in types):
        return pa.float64()
    if any(pt.is_floating(t) for t in types):
        return pa.float64() if any(pt.is_decimal(t) for t in types) else pa.float32()
    if any(pt.is_decimal(t) for t in types):
        return merge_decimals(types)
    signed = max(t.bit_width for t in types)
    return {8: pa.int8(), 16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[signed]


def finer_unit(*units: str) -> str:
    return max(units, key=_UNITS.index)


def common_type(types: list[pa.DataType]) -> pa.DataType | None:
    """The type every one of ``types`` converts to implicitly, or None if there is none."""
    known = [t for t in types if not is_null(t)]
    if not known:
        return pa.null()
    first = known[0]
    if all(t == first for t in known):
        return first
    if all(is_numeric(t) for t in known):
        return common_numeric(known)
    if all(is_string(t) for t in known):
        return pa.string()
    if all(pt.is_timestamp(t) or pt.is_date(t) for t in known):
        stamps = [t for t in known if pt.is_timestamp(t)]
        if len({t.tz for t in stamps}) > 1:
            return None
        unit = finer_unit(*(t.unit for t in stamps)) if stamps else "ms"
        return pa.timestamp(unit, stamps[0].tz) if stamps else first
    if all(pt.is_duration(t) for t in known):
        return pa.duration(finer_unit(*(t.unit for t in known)))
    if all(pt.is_time(t) for t in known):
        return pa.time32("ms") if all(t.unit in ("s", "ms") for t in known) else pa.time64("ns")
    if all(pt.is_list(t) for t in known):
        inner = common_type([t.value_type for t in known])
        return pa.list_(inner) if inner is not None else None
    return None
