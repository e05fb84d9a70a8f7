"""The memory connector: named in-process streams that feed jobs and collect what they write.

For tests and notebooks. A table with ``'connector' = 'memory', 'name' = 'bids'`` reads the
rows pushed to ``stream("bids")`` and, as a sink, appends every batch it is given (with its
``_op`` column, if any) to ``stream("bids").sink_batches``. Streams live in a process-wide
registry and are created on first use.

>>> import pyarrow as pa
>>> bids = stream("doctest-bids", schema=pa.schema([("id", pa.int64()), ("price", pa.float64())]))
>>> bids.push([{"id": 1, "price": 2.5}, {"id": 2}])
>>> bids.advance_watermark(60_000)
>>> bids.end()
>>> bids.reset()
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from streamsql.connectors.base import (
    SCAN_PARALLELISM,
    Connector,
    Option,
    Sink,
    SinkContext,
    Source,
    SourceContext,
    TableContext,
    register,
)
from streamsql.connectors.formats.common import make_batch
from streamsql.errors import ExecError, did_you_mean

Rows = pa.RecordBatch | pa.Table | Sequence[Mapping[str, Any]]
Pushed = pa.RecordBatch | list[Mapping[str, Any]]  # dicts wait for a schema to convert them

_STREAMS: dict[str, MemoryStream] = {}
_STREAMS_LOCK = threading.Lock()


def stream(name: str, schema: pa.Schema | None = None) -> MemoryStream:
    """The stream called ``name``, created on first use.

    ``schema`` fixes the columns that pushed rows are converted to; without it the stream
    takes the declared columns of the first table that reads it.
    """
    with _STREAMS_LOCK:
        found = _STREAMS.get(name)
        if found is None:
            found = _STREAMS[name] = MemoryStream(name)
    if schema is not None:
        found._adopt(schema, explicit=True)
    return found


@dataclass
class _Cursor:
    """Where one source instance is in a stream: pushes are dealt out push i to i mod n."""

    instance: int
    parallelism: int
    generation: int = 0  # the stream's reset count when the cursor was last placed
    push: int = 0  # the next push to read from
    row: int = 0  # rows of it already read
    hint: int = 0  # watermark hints already applied
    watermark: int | None = None


class MemoryStream:
    """Rows pushed for sources to read, and the batches sinks wrote. Thread-safe.

    Every source reads the stream from its first push (pushes are kept until ``reset()``).
    A push is delivered in pieces of at most the batch size and never merged with another,
    so a test controls the batch boundaries.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.sink_batches: list[pa.RecordBatch] = []
        self._lock = threading.Lock()
        self._schema: pa.Schema | None = None
        self._pushes: list[Pushed] = []
        self._hints: list[tuple[int, int]] = []  # (pushes made before the hint, epoch ms)
        self._ended = False
        self._generation = 0

    @property
    def schema(self) -> pa.Schema | None:
        return self._schema

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def pushes(self) -> int:
        """How many pushes the stream holds (push i goes to source instance i mod n)."""
        with self._lock:
            return len(self._pushes)

    def push(self, rows: Rows) -> None:
        """Queue rows: a RecordBatch, a Table, or a list of dicts (missing keys are NULL).

        Rows are converted to the stream's schema (columns by name, values cast); dicts
        pushed before the stream has one wait until the first source opens it.
        """
        with self._lock:
            if self._ended:
                raise ExecError(
                    f"memory stream {self.name!r} has ended", hint="reset() it to start again"
                )
            entry = self._entry(rows)
            if (len(entry) if isinstance(entry, list) else entry.num_rows) > 0:
                self._pushes.append(entry)

    def advance_watermark(self, ts_ms: int) -> None:
        """Vouch that no row older than ``ts_ms`` (epoch ms) will be pushed from now on.

        A source reports the largest such hint once it has delivered the rows pushed
        before it (``Source.watermark()``).
        """
        with self._lock:
            self._hints.append((len(self._pushes), int(ts_ms)))

    def end(self) -> None:
        """No more rows: sources end (read() returns None) once they have read the rest."""
        with self._lock:
            self._ended = True

    def reset(self) -> None:
        """Forget everything: rows, hints, the end, the schema and what sinks wrote."""
        with self._lock:
            self._schema = None
            self._pushes, self._hints, self.sink_batches = [], [], []
            self._ended = False
            self._generation += 1

    def table(self) -> pa.Table:
        """Every batch the sinks wrote, as one table (with ``_op`` when the query updates)."""
        with self._lock:
            batches = list(self.sink_batches)
        if not batches:
            return pa.table({})
        tables = [pa.Table.from_batches([b]) for b in batches]
        return pa.concat_tables(tables, promote_options="default")

    def _adopt(self, schema: pa.Schema, explicit: bool = False) -> None:
        """Take ``schema`` as the stream's if it has none yet (converting waiting rows).

        An explicit schema that differs from the one the stream has is an error.
        """
        with self._lock:
            if self._schema is None:
                self._convert(schema)
            elif explicit and not self._schema.equals(schema):
                raise ExecError(
                    f"memory stream {self.name!r} already has the schema {self._schema}",
                    hint="reset() it, or use another name",
                )

    def _collect(self, batch: pa.RecordBatch) -> None:
        """Keep one batch a sink wrote."""
        with self._lock:
            self.sink_batches.append(batch)

    def _take(
        self, cursor: _Cursor, limit: int, schema: pa.Schema
    ) -> tuple[pa.RecordBatch | None, bool]:
        """The next piece of the cursor's pushes (at most ``limit`` rows), and whether the
        stream has ended with nothing left for the cursor. ``schema`` is the reader's
        table's, learnt if the stream has none (it loses its schema on reset()).
        """
        with self._lock:
            if self._schema is None:
                self._convert(schema)
            self._skip(cursor)
            if cursor.push >= len(self._pushes):
                return None, self._ended
            whole = self._pushes[cursor.push]
            assert isinstance(whole, pa.RecordBatch), "every push is converted once learnt"
            piece = whole.slice(cursor.row, min(limit, whole.num_rows - cursor.row))
            cursor.row += piece.num_rows
            self._skip(cursor)  # hints that follow this push apply once the caller has it
            return piece, False

    def _watermark(self, cursor: _Cursor) -> int | None:
        """The largest hint made after every push the cursor has not finished reading."""
        with self._lock:
            self._skip(cursor)
            while cursor.hint < len(self._hints) and self._hints[cursor.hint][0] <= cursor.push:
                ts = self._hints[cursor.hint][1]
                cursor.watermark = ts if cursor.watermark is None else max(cursor.watermark, ts)
                cursor.hint += 1
            return cursor.watermark

    def _place(self, cursor: _Cursor, push: int, row: int) -> None:
        """Put a cursor at a position (a restart); hints are applied again from the first."""
        with self._lock:
            cursor.generation = self._generation
            cursor.push, cursor.row, cursor.hint, cursor.watermark = push, row, 0, None

    def _convert(self, schema: pa.Schema) -> None:
        self._pushes = [
            _batch(_conform(self.name, e, schema))
            if isinstance(e, pa.RecordBatch)
            else _batch(self._table(e, schema))
            for e in self._pushes
        ]
        self._schema = schema

    def _skip(self, cursor: _Cursor) -> None:
        """Move the cursor to its next push with rows left (or to the end of the pushes)."""
        if cursor.generation != self._generation:  # reset() since: start again
            cursor.generation = self._generation
            cursor.push, cursor.row, cursor.hint, cursor.watermark = 0, 0, 0, None
        pushes = self._pushes
        while cursor.push < len(pushes) and (
            cursor.push % cursor.parallelism != cursor.instance
            or cursor.row >= _num_rows(pushes[cursor.push])
        ):
            cursor.push, cursor.row = cursor.push + 1, 0

    def _entry(self, rows: Rows) -> Pushed:
        if isinstance(rows, pa.RecordBatch | pa.Table):
            if self._schema is None:
                return _batch(rows)
            return _batch(_conform(self.name, rows, self._schema))
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
            raise TypeError(
                f"push() takes a RecordBatch, a Table or a list of dicts, not {type(rows).__name__}"
            )
        if self._schema is None:
            return list(rows)
        return _batch(self._table(rows, self._schema))

    def _table(self, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
        keys = set().union(*rows) if rows else set()
        _check_columns(self.name, [k for k in keys if k not in schema.names], schema, "has no")
        try:
            return pa.Table.from_pylist(list(rows), schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise ExecError(f"memory stream {self.name!r}: rows do not fit {schema}: {e}") from e


def _conform(name: str, data: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with exactly the schema's columns, in its order and of its types."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    _check_columns(name, [c for c in table.column_names if c not in schema.names], schema, "has no")
    _check_columns(name, [c for c in schema.names if c not in table.column_names], schema, "needs")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise ExecError(f"memory stream {name!r}: rows do not fit {schema}: {e}") from e


def _check_columns(name: str, wrong: list[str], schema: pa.Schema, what: str) -> None:
    if wrong:
        first = sorted(wrong)[0]
        hint = did_you_mean(first, schema.names, "column") if what == "has no" else None
        raise ExecError(f"memory stream {name!r} {what} column {first!r}", hint=hint)


def _batch(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    if isinstance(data, pa.RecordBatch):
        return data
    if data.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=data.schema)
    return data.combine_chunks().to_batches()[0]


def _num_rows(entry: Pushed) -> int:
    return len(entry) if isinstance(entry, list) else entry.num_rows


class MemorySource(Source):
    """One instance's share of a stream (push i goes to instance i mod parallelism).

    The position is the push and the rows of it already read.
    """

    bounded = False

    def __init__(self, source: MemoryStream, schema: pa.Schema, ctx: SourceContext) -> None:
        super().__init__()
        self.stream = source
        self.table_schema = schema
        self.out_schema = pa.schema([schema.field(c) for c in ctx.columns])
        self.batch_size = max(1, ctx.batch_size)
        self.cursor = _Cursor(ctx.instance, ctx.parallelism)
        self._opened = False

    def open(self) -> None:
        if self._opened:
            return
        self.stream._adopt(self.table_schema)
        have = self.stream.schema
        assert have is not None
        missing = [c for c in self.out_schema.names if c not in have.names]
        if missing:
            raise ExecError(
                f"memory stream {self.stream.name!r} has no column {missing[0]!r}",
                hint="its columns: " + ", ".join(have.names),
            )
        self._opened = True

    def read(self) -> pa.RecordBatch | None:
        self.open()
        piece, ended = self.stream._take(self.cursor, self.batch_size, self.table_schema)
        if piece is None:
            if ended:
                return None
            columns = [pa.array([], f.type) for f in self.out_schema]
            return make_batch(columns, self.out_schema, 0)
        out = piece.select(self.out_schema.names)
        if not out.schema.equals(self.out_schema):
            out = out.cast(self.out_schema)
        self.counters["rows_read"] += out.num_rows
        return out

    def watermark(self) -> int | None:
        return self.stream._watermark(self.cursor)

    def position(self) -> dict[str, Any]:
        return {"push": self.cursor.push, "row": self.cursor.row}

    def seek(self, position: Mapping[str, Any]) -> None:
        self.stream._place(self.cursor, int(position.get("push", 0)), int(position.get("row", 0)))


class MemorySink(Sink):
    """Appends every batch it is given to its stream's ``sink_batches``."""

    guarantee = "at-least-once"

    def __init__(self, target: MemoryStream) -> None:
        super().__init__()
        self.stream = target

    def write(self, batch: pa.RecordBatch) -> None:
        self.stream._collect(batch)
        self.counters["rows_written"] += batch.num_rows


NAME = Option("name", required=True, help="the stream: streamsql.connectors.memory.stream(name)")


@register
class MemoryConnector(Connector):
    """``'connector' = 'memory'``: read rows pushed from Python, collect what a job writes.

    A table is unbounded until its stream has ended (``MemoryStream.end()``).
    """

    name = "memory"
    source_options = (NAME, SCAN_PARALLELISM)
    sink_options = (NAME,)
    sink_class = MemorySink

    def accepts_updates(self, table: TableContext) -> bool:
        return True  # batches are kept as they come, ``_op`` included

    def is_bounded(self, table: TableContext) -> bool:
        return stream(self.validate(table, "source")["name"]).ended

    def create_source(self, table: TableContext, ctx: SourceContext) -> Source:
        opts = self.validate(table, "source")
        missing = [c for c in ctx.columns if c not in table.schema.names]
        if missing:
            raise ValueError(f"table '{table.name}' has no column {missing[0]!r}")
        return MemorySource(stream(opts["name"]), table.schema, ctx)

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        return MemorySink(stream(self.validate(table, "sink")["name"]))

    def describe(self, table: TableContext) -> str:
        name = table.options.get("name")
        return f"memory(name={name})" if name else "memory"
