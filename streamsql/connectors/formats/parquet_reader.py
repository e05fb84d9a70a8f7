"""Read Parquet files: columns by name, cast to the declared types, streamed batch by batch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from streamsql.connectors.formats.common import Chunk, ReadSpec, make_batch
from streamsql.errors import ExecError
from streamsql.types import sql_type_name


def read_parquet_chunks(path: str, spec: ReadSpec, start: Mapping[str, int]) -> Iterator[Chunk]:
    """Batches of at most ``batch_size`` rows from row ``start['row']`` to the end of the file.

    Only the row groups from the starting row on are read, so resuming does not re-read
    the file's beginning.
    """
    try:
        pf = pq.ParquetFile(path, memory_map=True)
    except (OSError, pa.ArrowInvalid) as e:
        raise ExecError(f"{path}: not a readable Parquet file ({e})") from None
    with pf:
        casts = _plan_casts(path, pf.schema_arrow, spec)
        row = int(start.get("row", 0))
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
        firsts = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
        group = int(np.searchsorted(firsts, row, side="right")) - 1
        if group >= len(sizes) or row >= int(firsts[-1]):
            return
        skip = row - int(firsts[group])
        batches = pf.iter_batches(
            batch_size=spec.batch_size,
            row_groups=range(group, len(sizes)),
            columns=list(spec.columns),
            use_threads=spec.threads,
        )
        for raw in batches:
            if skip:
                if skip >= raw.num_rows:
                    skip -= raw.num_rows
                    continue
                raw, skip = raw.slice(skip), 0
            batch = _conform(path, raw, casts, spec)
            first = row
            row += batch.num_rows
            yield Chunk(batch, {"row": row}, first_row=first)


def _plan_casts(path: str, schema: pa.Schema, spec: ReadSpec) -> list[pa.DataType | None]:
    """For every needed column the type to cast to, or None when the file has it already."""
    casts: list[pa.DataType | None] = []
    for f in spec.fields:
        i = schema.get_field_index(f.name)
        if i < 0:
            raise ExecError(
                f"{path}: the file has no column '{f.name}' (declared {sql_type_name(f.type)})",
                hint="file columns: " + ", ".join(schema.names),
            )
        casts.append(None if schema.field(i).type == f.type else f.type)
    return casts


def _conform(
    path: str, raw: pa.RecordBatch, casts: list[pa.DataType | None], spec: ReadSpec
) -> pa.RecordBatch:
    if not any(casts):
        if raw.schema.equals(spec.out_schema, check_metadata=True):
            return raw  # the file's columns as declared: nothing to rebuild
        return make_batch(raw.columns, spec.out_schema, raw.num_rows)
    columns = []
    for f, column, target in zip(spec.fields, raw.columns, casts, strict=True):
        if target is None:
            columns.append(column)
            continue
        # Finer timestamps are truncated to the declared precision, as Flink does; any other
        # cast must be exact.
        lossy = pa.types.is_timestamp(target) and pa.types.is_timestamp(column.type)
        try:
            columns.append(column.cast(target, safe=not lossy))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ExecError(
                f"{path}: column '{f.name}' holds {column.type} values that do not fit "
                f"{sql_type_name(target)}: {e}"
            ) from None
    return make_batch(columns, spec.out_schema, raw.num_rows)
