"""The state of one side of a regular join: its entries (rows with their copies, match
counts and write times) in a DuckDB table, with an Arrow write buffer in front of it.

New and rewritten entries wait in the buffer (probed like the table) until it holds
FLUSH_ROWS rows or a checkpoint barrier comes; entries taken out of the table meanwhile are
remembered by number and skipped when it is read. See ``join_regular`` for the columns.

A checkpoint keeps every entry with its columns as stored (the buffer moves into DuckDB at
the barrier); a restore loads them into the DuckDB table, numbered anew.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.runtime.scalars import i64
from streamsql.state import StateStore
from streamsql.state.store import quote

#: Buffered entries (per side) before they move into DuckDB.
FLUSH_ROWS = 65_536

_I64 = np.int64


class Entries:
    """One side's entries: a DuckDB table with an Arrow write buffer in front."""

    def __init__(self, state: StateStore, table: str, schema: pa.Schema) -> None:
        self.state, self.table, self.schema = state, table, schema
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.dropped: list[np.ndarray] = []  # numbers of table entries taken out since
        self.stored = 0  # rows in the DuckDB table (some maybe dropped)
        self.flushed_max = -1  # no entry numbered above this is in the table
        self.rows = 0  # live entries
        self.next_id = 0

    def ids(self, n: int) -> np.ndarray:
        first, self.next_id = self.next_id, self.next_id + n
        return np.arange(first, first + n, dtype=_I64)

    def find(self, columns: list[str], probe: pa.Table | None, live: int | None) -> pa.Table:
        """The live entries whose ``columns`` equal one of ``probe``'s rows (all live
        entries for None); NULL equals nothing.
        """
        if probe is not None:
            if not probe.num_rows:
                return self.schema.empty_table()
            types = [self.schema.field(c).type for c in columns]
            if probe.schema.types != types:
                probe = probe.cast(pa.schema(list(zip(probe.column_names, types, strict=True))))
        parts = []
        if self.stored:
            when = f"s.__t >= {live}" if live is not None else "true"
            if probe is None:
                found = self.state.query(f"SELECT * FROM {quote(self.table)} s WHERE {when}")
            else:
                pairs = zip(columns, probe.column_names, strict=True)
                on = " AND ".join(f"s.{c} = p.{p}" for c, p in pairs)
                found = self.state.query(
                    f"SELECT s.* FROM {quote(self.table)} s SEMI JOIN __probe p ON {on} "
                    f"WHERE {when}",
                    __probe=probe,
                )
            if self.dropped:
                dropped = np.concatenate(self.dropped)
                found = found.filter(~np.isin(found.column("__id").to_numpy(), dropped))
            parts.append(found if found.schema == self.schema else found.cast(self.schema))
        if self.buffered:
            buffer = self._buffer()
            if live is not None:
                buffer = buffer.filter(pc.greater_equal(buffer.column("__t"), i64(live)))
            if probe is not None and len(columns) == 1:
                buffer = buffer.filter(pc.is_in(buffer.column(columns[0]), probe.column(0)))
            elif probe is not None:
                buffer = buffer.join(
                    probe, keys=columns, right_keys=probe.column_names, join_type="left semi"
                )
            parts.append(buffer)
        return pa.concat_tables([self.schema.empty_table(), *parts]).combine_chunks()

    def add(self, entries: pa.Table) -> None:
        self.buffer.append(entries)
        self.buffered += entries.num_rows
        self.rows += entries.num_rows
        if self.buffered >= FLUSH_ROWS:
            self.flush()

    def drop(self, ids: np.ndarray) -> None:
        """Take out the live entries numbered ``ids``."""
        if not len(ids):
            return
        self.rows -= len(ids)
        if self.buffered:
            buffer = self._buffer()
            buffer = buffer.filter(~np.isin(buffer.column("__id").to_numpy(), ids))
            self.buffer, self.buffered = [buffer], buffer.num_rows
        if self.stored:
            self.dropped.append(ids[ids <= self.flushed_max])

    def flush(self) -> None:
        """Move the write buffer into the DuckDB table."""
        self._delete_dropped()
        if self.buffered:
            buffer = self._buffer()
            self.state.append(self.table, buffer)
            self.stored += buffer.num_rows
            self.flushed_max = max(self.flushed_max, int(pc.max(buffer.column("__id")).as_py()))
            self.buffer, self.buffered = [], 0

    def expire(self, live: int) -> int:
        """Delete the entries written before ``live``; returns how many."""
        gone = 0
        if self.stored:
            self._delete_dropped()
            sql = f"DELETE FROM {quote(self.table)} WHERE __t < {live}"
            gone = int(self.state.execute(sql)[0][0])
            self.stored -= gone
        if self.buffered:
            buffer = self._buffer()
            kept = buffer.filter(pc.greater_equal(buffer.column("__t"), i64(live)))
            gone += buffer.num_rows - kept.num_rows
            self.buffer, self.buffered = [kept], kept.num_rows
        self.rows -= gone
        return gone

    def snapshot(self) -> pa.Table:
        """Every entry (the buffer moved into DuckDB first, the dropped ones deleted), by
        number, in the stored schema.
        """
        self.flush()
        if not self.stored:
            return self.schema.empty_table()
        rows = self.state.query(f"SELECT * FROM {quote(self.table)} ORDER BY __id")
        return rows if rows.schema == self.schema else rows.cast(self.schema)

    def load(self, entries: pa.Table) -> None:
        """Start from a checkpoint's ``entries`` (on an empty table). They are numbered
        0, 1, ... anew in the order of their old numbers: rows of several old instances
        (a restore at another parallelism) may share numbers, and only the order of one
        key's entries, which all come from one old instance, decides the output order.
        """
        n = entries.num_rows
        if not n:
            return
        entries = entries.take(np.argsort(entries.column("__id").to_numpy(), kind="stable"))
        at = self.schema.get_field_index("__id")
        entries = entries.set_column(at, "__id", pa.array(np.arange(n, dtype=_I64)))
        self.state.append(self.table, entries)
        self.stored = self.rows = self.next_id = n
        self.flushed_max = n - 1

    def _buffer(self) -> pa.Table:
        if len(self.buffer) > 1:
            self.buffer = [pa.concat_tables(self.buffer).combine_chunks()]
        return self.buffer[0]

    def _delete_dropped(self) -> None:
        if not self.dropped:
            return
        ids = np.unique(np.concatenate(self.dropped))
        self.dropped = []
        if len(ids):
            table = quote(self.table)
            deleted = self.state.execute_with(
                f"DELETE FROM {table} USING __gone g WHERE {table}.__id = g.__id",
                __gone=pa.table({"__id": ids}),
            )
            self.stored -= int(deleted[0][0])
