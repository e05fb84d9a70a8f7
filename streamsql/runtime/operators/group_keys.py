"""Group keys as DuckDB primary-key columns: NULL-free values plus a NULL flag per key.

SQL groups NULL keys together, but a primary key cannot hold NULL; each key column is
stored as its value with NULLs filled in (``k0``) and a flag saying it was NULL
(``k0_null``), which together are unique and NULL-free.

A checkpoint keeps the keys the other way round, as the input has them (``portable``): the
exchange in front of the operator hashes the input's key columns, NULLs and types as they
are, and state rescaled to another parallelism must hash to the instance their rows go to.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.errors import PlanError
from streamsql.types import sql_type_name


def _filler(t: pa.DataType) -> pa.Scalar:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.scalar("", t)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.scalar(b"", t)
    if pa.types.is_boolean(t):
        return pa.scalar(False, t)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pa.scalar(0, t)
    if pa.types.is_decimal(t):
        return pa.scalar(0).cast(t)
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return (
            pa.scalar(0, pa.int64()).cast(t)
            if t.bit_width == 64
            else pa.scalar(0, pa.int32()).cast(t)
        )
    raise PlanError(
        f"a streaming aggregation cannot group by a {sql_type_name(t)} column",
        hint="group by scalar columns (or fields of the ROW)",
    )


class GroupKeys:
    """Maps between a batch's key columns and their primary-key form in state."""

    def __init__(self, keys: tuple[str, ...], schema: pa.Schema) -> None:
        self.keys = keys
        self.types = [schema.field(k).type for k in keys]
        self.fillers = [_filler(t) for t in self.types]
        if keys:
            self.state_columns = [c for i in range(len(keys)) for c in (f"k{i}", f"k{i}_null")]
        else:
            self.state_columns = ["g"]  # one group: a constant key

    def state_schema(self) -> pa.Schema:
        if not self.keys:
            return pa.schema([("g", pa.int8())])
        fields = []
        for i, t in enumerate(self.types):
            fields += [pa.field(f"k{i}", t), pa.field(f"k{i}_null", pa.bool_())]
        return pa.schema(fields)

    def state_arrays(
        self, batch: pa.RecordBatch | pa.Table, names: list[str] | None = None
    ) -> dict[str, pa.Array]:
        """The primary-key columns for every row of ``batch``, whose key columns are named
        ``names`` (the input's names when None).
        """
        if not self.keys:
            return {"g": pa.array(np.zeros(batch.num_rows, dtype=np.int8))}
        out: dict[str, pa.Array] = {}
        for i, (key, filler) in enumerate(zip(names or self.keys, self.fillers, strict=True)):
            values = batch.column(key)
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            out[f"k{i}"] = pc.fill_null(values, filler)
            out[f"k{i}_null"] = pc.is_null(values)
        return out

    def restore(self, table: pa.Table) -> list[pa.Array]:
        """The original key columns (with their NULLs) from the primary-key columns."""
        arrays = []
        for i, t in enumerate(self.types):
            values = table.column(f"k{i}").combine_chunks()
            nulls = table.column(f"k{i}_null").combine_chunks()
            arrays.append(pc.if_else(nulls, pa.nulls(len(values), t), values))
        return arrays

    @property
    def portable_names(self) -> list[str]:
        """The key columns' names in ``portable`` form (no state column starts so)."""
        return [f"__key{i}" for i in range(len(self.keys))]

    def portable(self, state: pa.Table) -> pa.Table:
        """``state`` rows with their primary-key columns replaced by the original key
        columns (NULLs back, the input's types) named ``portable_names``: they hash like
        the input's key columns, so a snapshot keys its rows by them.
        """
        keys = dict(zip(self.portable_names, self.restore(state), strict=True))
        rest = state.drop_columns(self.state_columns)
        return pa.table({**keys, **dict(zip(rest.column_names, rest.columns, strict=True))})

    def from_portable(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        """``portable`` rows back in state form: the columns of ``schema``."""
        cols = self.state_arrays(table, self.portable_names)
        arrays = [cols[n] if n in cols else table.column(n) for n in schema.names]
        return pa.table(arrays, names=schema.names).cast(schema)
