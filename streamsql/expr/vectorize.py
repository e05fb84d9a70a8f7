"""Running kernels that need constant options (a pattern, a width) over per-row arguments.

Many Arrow kernels take their pattern or length as an option, not as an array. When such an
argument is a column, :func:`by_params` groups the rows by the distinct values of those
arguments and runs the kernel once per group: constant arguments (the common case) cost one
call, and a column of arguments costs one call per distinct value, never one per row.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.expr.node import Value, as_array, is_scalar, null_of


def _length(values: list[Value]) -> int | None:
    return next((len(v) for v in values if not is_scalar(v)), None)


def _nulls(out_type: pa.DataType, n: int | None) -> Value:
    return null_of(out_type) if n is None else pa.nulls(n, out_type)


def by_params(
    fn: Callable[..., Value],
    data: list[Value],
    params: list[Value],
    out_type: pa.DataType,
) -> Value:
    """``fn(*data, *param_scalars)`` for every row, grouping rows by their parameter values.

    ``fn`` receives the data (arrays restricted to a group, or scalars) and one non-null Python
    value per parameter; a NULL parameter makes the row NULL without calling ``fn``.
    """
    n = _length(data + params)
    if all(is_scalar(p) for p in params):
        if any(not p.is_valid for p in params):
            return _nulls(out_type, _length(data))
        return fn(*data, *(p.as_py() for p in params))
    assert n is not None
    if n == 0:
        return pa.array([], out_type)
    arrays = [as_array(p, n) for p in params]
    table = pa.table({f"p{i}": a for i, a in enumerate(arrays)})
    combos = table.group_by(table.column_names, use_threads=False).aggregate([])
    pieces: list[pa.Array] = []
    positions: list[pa.Array] = []
    for row in range(combos.num_rows):
        values = [combos.column(i)[row] for i in range(len(arrays))]
        mask = None
        for a, v in zip(arrays, values, strict=True):
            hit = pc.is_null(a) if not v.is_valid else pc.fill_null(pc.equal(a, v), False)
            mask = hit if mask is None else pc.and_(mask, hit)
        rows = pc.indices_nonzero(mask)
        if any(not v.is_valid for v in values):
            out = pa.nulls(len(rows), out_type)
        else:
            part = [d if is_scalar(d) else pc.take(d, rows) for d in data]
            out = as_array(fn(*part, *(v.as_py() for v in values)), len(rows))
        pieces.append(out.cast(out_type) if out.type != out_type else out)
        positions.append(rows)
    order = pc.sort_indices(pa.concat_arrays(positions))
    return pc.take(pa.concat_arrays(pieces), order)
