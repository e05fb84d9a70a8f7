"""Ranking rows within partitions, vectorized: the shared core of Top-N operators."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.nodes import SortKey
from streamsql.runtime.operators.group_keys import GroupKeys

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


class StoredRows:
    """Rows in the form rankings keep them: partition key columns (NULL-free, see
    GroupKeys), the row itself, an arrival number, and any extra columns.
    """

    def __init__(
        self,
        partition_keys: tuple[str, ...],
        schema: pa.Schema,
        extra: tuple[pa.Field, ...] = (),
    ) -> None:
        self.partition = GroupKeys(partition_keys, schema)
        self.pk = list(self.partition.state_columns)
        self.columns = list(schema.names)
        stored = self.partition.state_schema()
        for f in [*schema, pa.field(SEQ, pa.int64()), *extra]:
            stored = stored.append(f)
        self.schema = stored
        self.next_seq = 0

    def of(self, batch: pa.RecordBatch, **extra: pa.Array) -> pa.Table:
        """A batch in stored form; its rows are numbered after every earlier row."""
        cols = self.partition.state_arrays(batch)
        for name in self.columns:
            cols[name] = batch.column(name)
        cols[SEQ] = pa.array(np.arange(self.next_seq, self.next_seq + batch.num_rows))
        self.next_seq += batch.num_rows
        cols.update(extra)
        return pa.Table.from_pydict(cols, schema=self.schema)

    def portable(self, stored: pa.Table) -> pa.Table:
        """Stored rows as a checkpoint keeps them: without the NULL-free partition columns,
        since the row's own partition key columns hash as the input's exchange does.
        """
        return stored.drop_columns(self.pk)

    def restored(self, rows: pa.Table) -> pa.Table:
        """``portable`` rows back in stored form, numbered anew after every earlier row.

        Only the order of arrival numbers within a partition matters, and a partition's rows
        come from one old instance; but rows restored from several old instances (at another
        parallelism) come with numberings of their own that may collide across partitions,
        so they are renumbered in the order they had.
        """
        rows = rows.sort_by(SEQ)
        cols = self.partition.state_arrays(rows)
        for name in rows.column_names:
            cols[name] = rows.column(name)
        cols[SEQ] = pa.array(np.arange(self.next_seq, self.next_seq + rows.num_rows))
        self.next_seq += rows.num_rows
        return pa.table([cols[n] for n in self.schema.names], names=self.schema.names).cast(
            self.schema
        )
