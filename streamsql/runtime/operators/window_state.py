"""State of windowed operators: rows per window end, in an Arrow write buffer that moves
into DuckDB tables, taken out when their windows fire.

Every row stored here carries ``we``, the end of its window (epoch ms). Rows arrive in the
buffer; the buffer moves into the operator's DuckDB tables once it holds FLUSH_ROWS rows (and
when an operator flushes it). When windows fire, their rows are taken from both places.

A checkpoint keeps every row held, per kind (``contents``): those in DuckDB and those in
the write buffer apart, so that it need not move the buffer into DuckDB; a restored
instance puts each back where it was (``load``), so that it reads them in the same order
as the instance that took the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.runtime.scalars import i64
from streamsql.runtime.snapshot import RestoreError
from streamsql.state import StateStore
from streamsql.state.store import quote

#: Buffered rows before they are written to DuckDB (amortises per-call cost).
FLUSH_ROWS = 262_144
#: Suffix of a checkpoint's table of rows that were still in the write buffer.
BUFFERED = "/buffered"
_INT64_MAX = 2**63 - 1


def fire_limit(watermark: int) -> int:
    """Windows ending at or before this have fired: a window fires once the watermark
    reaches its last millisecond (end - 1).
    """
    return min(watermark + 1, _INT64_MAX)


@dataclass
class _Chunk:
    """Buffered rows and the range of their window ends."""

    first: int
    last: int
    rows: pa.Table


class WindowState:
    """Rows of several kinds (e.g. partial aggregates and distinct values) per window.

    Each buffered chunk knows the range of its window ends, so that firing (or dropping)
    windows touches only the chunks holding rows for them, however many later windows are
    waiting; a chunk is filtered only when it also holds rows of other windows.
    """

    def __init__(self, state: StateStore, tables: dict[str, str], schemas: dict[str, pa.Schema]):
        self.state = state
        self.tables = tables
        self.schemas = schemas
        self.buffer: dict[str, list[_Chunk]] = {kind: [] for kind in tables}
        self.buffered = 0
        self.pending: set[int] = set()  # ends of the windows holding rows
        self.stored: set[int] = set()  # ends of the windows with rows in DuckDB

    def add(self, kind: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        ends = pc.unique(rows.column("we")).to_pylist()
        self.buffer[kind].append(_Chunk(min(ends), max(ends), rows))
        self.pending.update(ends)
        self.buffered += rows.num_rows
        if self.buffered >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Move the write buffer into the DuckDB tables."""
        for kind, chunks in self.buffer.items():
            if chunks:
                data = pa.concat_tables([c.rows for c in chunks])
                self.state.append(self.tables[kind], data)
                self.stored.update(pc.unique(data.column("we")).to_pylist())
                chunks.clear()
        self.buffered = 0

    def due(self, limit: int) -> bool:
        """Whether rows of a window ending at or before ``limit`` are held."""
        return bool(self.pending) and min(self.pending) <= limit

    def take(self, limit: int, low: int | None = None) -> dict[str, pa.Table]:
        """Remove and return every row with ``low < we <= limit`` (no lower bound for None)."""
        taken = self.read(low, limit)
        self.discard(limit, low)
        return taken

    def discard(self, limit: int, low: int | None = None) -> None:
        """Remove every row with ``low < we <= limit`` (no lower bound for None)."""
        gone = {e for e in self.pending if e <= limit and (low is None or e > low)}
        if not gone:
            return
        for kind, chunks in self.buffer.items():
            kept = []
            for c in chunks:
                match _overlap(c, low, limit):
                    case "none":
                        kept.append(c)
                    case "part":
                        rest = c.rows.filter(pc.invert(_within(c.rows.column("we"), low, limit)))
                        self.buffered -= c.rows.num_rows - rest.num_rows
                        kept.append(_Chunk(c.first, c.last, rest))
                    case "all":
                        self.buffered -= c.rows.num_rows
            self.buffer[kind] = kept
        if gone & self.stored:
            where = ""
            if not gone >= self.stored:
                where = f" WHERE we <= {limit}" + ("" if low is None else f" AND we > {low}")
            for table in self.tables.values():
                self.state.execute(f"DELETE FROM {quote(table)}{where}")
            self.stored -= gone
        self.pending -= gone

    def read(self, low: int | None, high: int) -> dict[str, pa.Table]:
        """The rows with ``low < we <= high`` (no lower bound for None), left in place."""
        in_table = any((low is None or e > low) and e <= high for e in self.stored)
        where = f"we <= {high}" + ("" if low is None else f" AND we > {low}")
        out: dict[str, pa.Table] = {}
        for kind, chunks in self.buffer.items():
            parts = []
            for c in chunks:
                match _overlap(c, low, high):
                    case "part":
                        parts.append(c.rows.filter(_within(c.rows.column("we"), low, high)))
                    case "all":
                        parts.append(c.rows)
            if in_table:
                table = quote(self.tables[kind])
                parts.append(self.state.query(f"SELECT * FROM {table} WHERE {where}"))
            schema = self.schemas[kind]
            out[kind] = pa.concat_tables([schema.empty_table(), *(p.cast(schema) for p in parts)])
        return out

    def contents(self) -> dict[str, pa.Table]:
        """Every row held, per kind, in the kinds' schemas (for a checkpoint): the rows in
        DuckDB under the kind's name, and those still in the write buffer (if any) under
        ``kind + BUFFERED``, so that a checkpoint need not move the buffer into DuckDB.
        """
        out = {}
        for kind, schema in self.schemas.items():
            if self.stored:
                table = quote(self.tables[kind])
                out[kind] = self.state.query(f"SELECT * FROM {table}").cast(schema)
            else:
                out[kind] = schema.empty_table()
            chunks = self.buffer[kind]
            if chunks:
                out[kind + BUFFERED] = pa.concat_tables([c.rows.cast(schema) for c in chunks])
        return out

    def load(self, contents: dict[str, pa.Table]) -> None:
        """Hold the rows of ``contents`` (from ``contents`` of earlier instances) in DuckDB:
        their windows are pending again. Kinds it does not name stay empty.
        """
        unknown = {k.removesuffix(BUFFERED) for k in contents} - set(self.tables)
        if unknown:
            raise RestoreError(
                f"the checkpoint holds window state {sorted(unknown)} that this operator does "
                f"not keep (it keeps {list(self.tables)})",
                hint="restore a checkpoint of the same query",
            )
        for kind, rows in contents.items():
            if rows.num_rows == 0:
                continue
            if kind.endswith(BUFFERED):  # back into the buffer: read in the same order
                self.add(
                    kind.removesuffix(BUFFERED), rows.cast(self.schemas[kind[: -len(BUFFERED)]])
                )
                continue
            self.state.append(self.tables[kind], rows.cast(self.schemas[kind]))
            ends = pc.unique(rows.column("we")).to_pylist()
            self.stored.update(ends)
            self.pending.update(ends)

    def rows(self) -> int:
        if not self.stored:  # nothing moved into DuckDB yet (or all of it taken): no query
            return self.buffered
        return self.buffered + sum(self.state.row_count(t) for t in self.tables.values())


def _overlap(chunk: _Chunk, low: int | None, high: int) -> str:
    """Whether all, part or none of the chunk's rows have ``low < we <= high``."""
    above = low is None or chunk.first > low
    if chunk.first > high or (low is not None and chunk.last <= low):
        return "none"
    return "all" if above and chunk.last <= high else "part"


def _within(we: pa.ChunkedArray | pa.Array, low: int | None, high: int) -> pa.Array:
    """``low < we <= high`` (no lower bound for None)."""
    upto = pc.less_equal(we, i64(high))
    return upto if low is None else pc.and_(upto, pc.greater(we, i64(low)))
