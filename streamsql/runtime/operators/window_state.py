"""State of windowed operators: rows per window end, in an Arrow write buffer that moves
into DuckDB tables, taken out when their windows fire.

Every row stored here carries ``we``, the end of its window (epoch ms). Rows arrive in the
buffer; the buffer moves into the operator's DuckDB tables once it holds FLUSH_ROWS rows, and
at every checkpoint barrier. When windows fire, their rows are taken from both places.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.runtime.scalars import i64
from streamsql.state import StateStore
from streamsql.state.store import quote

#: Buffered rows before they are written to DuckDB (amortises per-call cost).
FLUSH_ROWS = 262_144
_INT64_MAX = 2**63 - 1


def fire_limit(watermark: int) -> int:
    """Windows ending at or before this have fired: a window fires once the watermark
    reaches its last millisecond (end - 1).
    """
    return min(watermark + 1, _INT64_MAX)


class WindowState:
    """Rows of several kinds (e.g. partial aggregates and distinct values) per window."""

    def __init__(self, state: StateStore, tables: dict[str, str], schemas: dict[str, pa.Schema]):
        self.state = state
        self.tables = tables
        self.schemas = schemas
        self.buffer: dict[str, list[pa.Table]] = {kind: [] for kind in tables}
        self.buffered = 0
        self.pending: set[int] = set()  # ends of the windows holding rows
        self.stored: set[int] = set()  # ends of the windows with rows in DuckDB

    def add(self, kind: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        self.buffer[kind].append(rows)
        self.buffered += rows.num_rows
        self.pending.update(pc.unique(rows.column("we")).to_pylist())
        if self.buffered >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Move the write buffer into the DuckDB tables."""
        for kind, chunks in self.buffer.items():
            if chunks:
                data = pa.concat_tables(chunks)
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
            rest = [c.filter(pc.invert(_within(c.column("we"), low, limit))) for c in chunks]
            self.buffer[kind] = [c for c in rest if c.num_rows]
        if gone & self.stored:
            where = ""
            if not gone >= self.stored:
                where = f" WHERE we <= {limit}" + ("" if low is None else f" AND we > {low}")
            for table in self.tables.values():
                self.state.execute(f"DELETE FROM {quote(table)}{where}")
            self.stored -= gone
        self.pending -= gone
        self.buffered = sum(c.num_rows for chunks in self.buffer.values() for c in chunks)

    def read(self, low: int | None, high: int) -> dict[str, pa.Table]:
        """The rows with ``low < we <= high`` (no lower bound for None), left in place."""
        in_table = any((low is None or e > low) and e <= high for e in self.stored)
        where = f"we <= {high}" + ("" if low is None else f" AND we > {low}")
        out: dict[str, pa.Table] = {}
        for kind, chunks in self.buffer.items():
            parts = [c.filter(_within(c.column("we"), low, high)) for c in chunks]
            if in_table:
                table = quote(self.tables[kind])
                parts.append(self.state.query(f"SELECT * FROM {table} WHERE {where}"))
            schema = self.schemas[kind]
            out[kind] = pa.concat_tables([schema.empty_table(), *(p.cast(schema) for p in parts)])
        return out

    def rows(self) -> int:
        return self.buffered + sum(self.state.row_count(t) for t in self.tables.values())


def _within(we: pa.ChunkedArray | pa.Array, low: int | None, high: int) -> pa.Array:
    """``low < we <= high`` (no lower bound for None)."""
    upto = pc.less_equal(we, i64(high))
    return upto if low is None else pc.and_(upto, pc.greater(we, i64(low)))
