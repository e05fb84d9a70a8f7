"""Helpers for connector tests: tables, reading a source to the end, writing a sink."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from streamsql.connectors import get_connector
from streamsql.connectors.base import SinkContext, Source, SourceContext, TableContext


def table(schema: pa.Schema, **options: str) -> TableContext:
    """A table with the given options (underscores in keyword names stay as given)."""
    return TableContext("t", schema, dict(options))


def fs_table(schema: pa.Schema, path: Path | str, fmt: str, **extra: str) -> TableContext:
    opts = {"connector": "filesystem", "path": str(path), "format": fmt, **extra}
    return TableContext("t", schema, opts)


def source(
    t: TableContext,
    columns: Sequence[str] | None = None,
    batch_size: int = 65536,
    instance: int = 0,
    parallelism: int = 1,
) -> Source:
    ctx = SourceContext(
        columns=list(t.schema.names if columns is None else columns),
        batch_size=batch_size,
        instance=instance,
        parallelism=parallelism,
    )
    return get_connector(t.options["connector"]).create_source(t, ctx)


def read_batches(src: Source, limit: int | None = None) -> list[pa.RecordBatch]:
    """Batches until the end (or ``limit`` batches)."""
    src.open()
    out = []
    while limit is None or len(out) < limit:
        batch = src.read()
        if batch is None:
            break
        out.append(batch)
    return out


def read_rows(src: Source) -> list[dict]:
    return [row for b in read_batches(src) for row in b.to_pylist()]


def write_all(t: TableContext, batches: Sequence[pa.RecordBatch], **ctx: object) -> object:
    sink = get_connector(t.options["connector"]).create_sink(t, SinkContext(**ctx))  # type: ignore[arg-type]
    sink.open()
    for b in batches:
        sink.write(b)
    sink.close()
    return sink
