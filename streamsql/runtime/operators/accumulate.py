"""Arithmetic shared by the aggregate operators: the types sums run in, and AVG."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.runtime.scalars import ZERO
from streamsql.types import sum_type


def sum_input(values: pa.Array) -> pa.Array:
    """Values widened so that (partial) sums cannot overflow a narrower type: BIGINT,
    DOUBLE or DECIMAL(38, s).
    """
    return values.cast(sum_type(values.type))


def average(total: pa.Array, count: pa.Array, out: pa.DataType) -> pa.Array:
    """SUM / COUNT in the result type: integer division truncates, as Flink's AVG does."""
    count = count.cast(pa.int64())
    safe = pc.if_else(pc.equal(count, ZERO), pa.scalar(None, pa.int64()), count)
    if pa.types.is_integer(out):
        return pc.divide(total.cast(pa.int64()), safe).cast(out)
    if pa.types.is_decimal(out):
        # Exact decimal division needs headroom: divide in DECIMAL256, round HALF_UP.
        digits = total.type.precision - total.type.scale + out.scale
        wide = total.cast(pa.decimal256(min(digits, 56), out.scale))
        quotient = pc.divide(wide, safe.cast(pa.decimal256(19, 0)))
        rounded = pc.round(quotient, ndigits=out.scale, round_mode="half_up")
        return rounded.cast(out, safe=False)
    return pc.divide(total.cast(pa.float64()), safe.cast(pa.float64()))
