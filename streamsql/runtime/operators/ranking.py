"""Ranking rows within partitions, vectorized: the shared core of Top-N operators."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.nodes import SortKey

#: Arrival order of stored rows: ties in the ORDER BY keep the earlier row first.
SEQ = "__seq"


def rank_within(
    table: pa.Table, partition: list[str], order: tuple[SortKey, ...]
) -> tuple[pa.Table, np.ndarray]:
    """``table`` sorted by partition, then ``order`` (NULLs placed as each key says), then
    arrival (``SEQ``), with each row's 1-based ROW_NUMBER within its partition.

    ``partition`` names NULL-free columns (see GroupKeys).
    """
    sort_keys: list[tuple[str, str]] = [(c, "ascending") for c in partition]
    helpers = {}
    for i, key in enumerate(order):
        flag = f"__null{i}"
        nulls_first = key.nulls_first if key.nulls_first is not None else key.ascending
        helpers[flag] = pc.is_null(table.column(key.column))
        # NULLs first: the flag sorts descending (True before False), else ascending.
        sort_keys.append((flag, "descending" if nulls_first else "ascending"))
        sort_keys.append((key.column, "ascending" if key.ascending else "descending"))
    sort_keys.append((SEQ, "ascending"))
    with_flags = table
    for name, values in helpers.items():
        with_flags = with_flags.append_column(name, values)
    order_idx = pc.sort_indices(with_flags, sort_keys=sort_keys)
    ordered = table.take(order_idx)
    return ordered, row_numbers(ordered, partition)


def row_numbers(ordered: pa.Table, partition: list[str]) -> np.ndarray:
    """1-based position of each row within its run of equal partition values."""
    n = ordered.num_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.zeros(n, dtype=bool)
    starts[0] = True
    for c in partition:
        values = ordered.column(c).combine_chunks()
        if n > 1:
            diff = pc.not_equal(values.slice(1), values.slice(0, n - 1))
            starts[1:] |= diff.to_numpy(zero_copy_only=False)
    idx = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(starts, idx, 0))
    return idx - first + 1
