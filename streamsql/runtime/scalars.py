"""Typed Arrow scalars for compute calls in hot paths.

``pc.less(array, 5)`` converts the Python int on every call, and that conversion
costs about fifty microseconds (pyarrow probes for optional date libraries each
time). Operators pass these typed scalars instead.
"""

import pyarrow as pa

ZERO = pa.scalar(0, pa.int64())
ONE = pa.scalar(1, pa.int64())


def i64(value: int) -> pa.Int64Scalar:
    """``value`` as an Arrow int64 scalar."""
    return pa.scalar(value, pa.int64())
