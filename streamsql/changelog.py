"""Turning a changelog into the table it describes.

An updating query's batches carry ``_op``: +I and +U rows add a row, -U and -D rows take
back one identical row added before. What is left at the end is the query's result.

>>> import pyarrow as pa
>>> log = pa.table({"k": ["a", "a", "a"], "n": [1, 1, 2], "_op": pa.array([0, 1, 2], pa.int8())})
>>> final_table(log).to_pylist()
[{'k': 'a', 'n': 2}]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.errors import ExecError
from streamsql.plan.changelog import OP, signs

__all__ = ["apply_changes", "final_table", "last_per_key"]


def final_table(
    changes: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch], schema: pa.Schema | None = None
) -> pa.Table:
    """The rows a changelog leaves in place, in the order they were first added.

    A table without ``_op`` is append-only and comes back unchanged. A retraction of a row
    that is not there is an error (the changelog is inconsistent).
    """
    table = _as_table(changes, schema)
    if OP not in table.column_names:
        return table
    rows = table.drop_columns([OP])
    if rows.num_columns == 0:
        return rows
    weight = signs(table.column(OP).combine_chunks())
    data = rows.append_column("__w", weight).append_column(
        "__first", pa.array(np.arange(rows.num_rows, dtype=np.int64))
    )
    grouped = data.group_by(rows.column_names, use_threads=False).aggregate(
        [("__w", "sum"), ("__first", "min")]
    )
    counts = grouped.column("__w_sum").to_numpy(zero_copy_only=False)
    if (counts < 0).any():
        raise ExecError("the changelog retracts rows it never added")
    grouped = grouped.sort_by("__first_min")
    counts = grouped.column("__w_sum").to_numpy(zero_copy_only=False)
    repeat = np.repeat(np.arange(grouped.num_rows), counts)
    return grouped.select(rows.column_names).take(pa.array(repeat))


def apply_changes(rows: pa.Table, changes: pa.Table) -> pa.Table:
    """The rows left in place once ``changes`` (a changelog, with ``_op``) apply to ``rows``
    (a result so far: the changelog's columns but ``_op``). Keeping ``rows`` and folding
    each new run of changes into them keeps a result current without its whole history.

    >>> rows = pa.table({"k": ["a"], "n": [1]})
    >>> more = pa.table({"k": ["a", "a"], "n": [1, 2], "_op": pa.array([1, 2], pa.int8())})
    >>> apply_changes(rows, more).to_pylist()
    [{'k': 'a', 'n': 2}]
    """
    field = changes.schema.field(OP)
    inserts = pa.array(np.zeros(rows.num_rows, np.int8)).cast(field.type)
    before = rows.add_column(changes.schema.get_field_index(OP), field, inserts)
    return final_table(pa.concat_tables([before, changes]))


def _as_table(
    changes: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch], schema: pa.Schema | None
) -> pa.Table:
    if isinstance(changes, pa.Table):
        return changes
    if isinstance(changes, pa.RecordBatch):
        return pa.Table.from_batches([changes])
    batches = list(changes)
    if not batches:
        if schema is None:
            raise ValueError("an empty changelog needs its schema")
        return schema.empty_table()
    return pa.Table.from_batches(batches)


def is_updating(table: pa.Table | pa.RecordBatch) -> bool:
    """Whether the rows carry changelog row kinds."""
    return OP in table.schema.names and bool(pc.any(pc.not_equal(table.column(OP), 0)).as_py())


def last_per_key(data: pa.RecordBatch | pa.Table, key: Sequence[str]) -> pa.Array:
    """Indices of the last row of each key, in batch order (NULL keys group together).

    >>> last_per_key(pa.record_batch({"k": [1, 2, 1, 3, 2]}), ["k"]).to_pylist()
    [2, 3, 4]
    """
    row = "\x00row"  # cannot clash with a column name
    keyed = pa.table({**{k: data.column(k) for k in key}, row: np.arange(data.num_rows)})
    last = keyed.group_by(list(key), use_threads=False).aggregate([(row, "max")])
    return pa.array(np.sort(last.column(f"{row}_max").to_numpy()))
