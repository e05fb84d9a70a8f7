"""Event time as integers: epoch milliseconds, and the watermark's two infinities."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.runtime.scalars import i64
from streamsql.types import TIME_TYPE

#: No watermark yet: every row is on time.
MIN_WATERMARK = -(2**63)
#: End of a bounded input: every window closes.
MAX_WATERMARK = 2**63 - 1

_PER_MS = {"s": None, "ms": 1, "us": 1000, "ns": 1_000_000}


def to_ms(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Epoch milliseconds (int64) of a timestamp array, flooring sub-millisecond parts.

    >>> to_ms(pa.array([1500], pa.timestamp("us"))).to_pylist()
    [1]
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if pa.types.is_timestamp(t):
        raw = values.view(pa.int64())
        if t.unit == "s":
            return pc.multiply(raw, i64(1000))
        per = _PER_MS[t.unit]
        if per == 1:
            return raw
        arr = raw.to_numpy(zero_copy_only=False)
        mask = raw.is_null().to_numpy(zero_copy_only=False) if raw.null_count else None
        return pa.array(np.floor_divide(arr, per), pa.int64(), mask=mask)
    if pa.types.is_date(t):
        return pc.multiply(values.cast(pa.int32()).cast(pa.int64()), i64(86_400_000))
    return values.cast(pa.int64())


def from_ms(values: pa.Array | np.ndarray) -> pa.Array:
    """Millisecond timestamps from epoch milliseconds."""
    if isinstance(values, np.ndarray):
        return pa.array(values, pa.int64()).view(TIME_TYPE)
    return values.cast(pa.int64()).view(TIME_TYPE)


def format_ms(value: int | None) -> str:
    """A watermark for people: ISO time, or -inf/+inf at the extremes."""
    if value is None or value <= MIN_WATERMARK:
        return "-inf"
    if value >= MAX_WATERMARK:
        return "+inf"
    return str(pa.scalar(value, pa.int64()).cast(TIME_TYPE)).replace(" ", "T")
