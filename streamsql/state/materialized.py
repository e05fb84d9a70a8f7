"""Materialized views: a query's current result kept in a DuckDB table of the session.

The table holds the view's rows as a user reads them. Changes are applied per batch: an
upsert stream replaces rows by key, a retract stream removes one identical row per
retraction, an append-only stream inserts. Reading the view is an ordinary bounded scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql import duck
from streamsql.changelog import last_per_key
from streamsql.connectors.base import Connector, Sink, Source, SourceContext, TableContext
from streamsql.plan.changelog import OP, Changelog, signs
from streamsql.state.store import quote


class MaterializedTable:
    """The DuckDB table behind one materialized view."""

    def __init__(self, con: duck.Connection, name: str, schema: pa.Schema, mode: Changelog):
        self.con = con
        self.name = name
        self.schema = schema
        self.mode = mode

    def create(self) -> None:
        duck.create_table(self.con, self.name, self.schema)

    def drop(self) -> None:
        duck.run(self.con, f"DROP TABLE IF EXISTS {quote(self.name)}")

    def apply(self, batch: pa.RecordBatch) -> None:
        """Apply one batch of changes, atomically."""
        if OP not in batch.schema.names:
            duck.insert_arrow(self.con, self.name, batch)
            return
        with duck.transaction(self.con):
            if self.mode.kind == "upsert":
                self._upsert(batch)
            else:
                self._retract(batch)

    def _upsert(self, batch: pa.RecordBatch) -> None:
        keys = list(self.mode.keys)
        rows = batch.drop_columns([OP])
        # Without keys there is one row in all: the last change is the row.
        last = batch.take(last_per_key(rows, keys)) if keys else batch.slice(batch.num_rows - 1, 1)
        table = quote(self.name)
        if keys:
            on = " AND ".join(f"{table}.{quote(k)} IS NOT DISTINCT FROM c.{quote(k)}" for k in keys)
            with duck.registered(self.con, __changed=last.select(keys)):
                duck.run(self.con, f"DELETE FROM {table} USING __changed c WHERE {on}")
        else:
            duck.run(self.con, f"DELETE FROM {table}")
        kept = last.filter(pc.greater(signs(last.column(OP)), 0)).drop_columns([OP])
        duck.insert_arrow(self.con, self.name, kept)

    def _retract(self, batch: pa.RecordBatch) -> None:
        """Multiset changes: net out each identical row, then insert or delete copies."""
        rows = batch.drop_columns([OP])
        cols = rows.schema.names
        weights = pa.table(rows).append_column("__w", signs(batch.column(OP)))
        net = weights.group_by(cols, use_threads=False).aggregate([("__w", "sum")])
        w = net.column("__w_sum").to_numpy(zero_copy_only=False)
        adds = net.filter(pa.array(w > 0))
        if adds.num_rows:
            copies = adds.column("__w_sum").to_numpy(zero_copy_only=False)
            repeat = pa.array(np.repeat(np.arange(adds.num_rows), copies))
            duck.insert_arrow(self.con, self.name, adds.select(cols).take(repeat))
        removes = net.filter(pa.array(w < 0))
        if removes.num_rows:
            removes = removes.append_column("__n", pc.negate(removes.column("__w_sum")))
            table = quote(self.name)
            names = ", ".join(quote(c) for c in cols)
            on = " AND ".join(f"m.{quote(c)} IS NOT DISTINCT FROM r.{quote(c)}" for c in cols)
            with duck.registered(self.con, __removed=removes.select([*cols, "__n"])):
                duck.run(
                    self.con,
                    f"DELETE FROM {table} WHERE rowid IN (SELECT m.rowid FROM "
                    f"(SELECT rowid, {names}, row_number() OVER (PARTITION BY {names} "
                    f"ORDER BY rowid) AS __k FROM {table}) m JOIN __removed r ON {on} "
                    f"WHERE m.__k <= r.__n)",
                )


class MaterializedSink(Sink):
    guarantee = "exactly-once (session state)"

    def __init__(self, target: MaterializedTable) -> None:
        super().__init__()
        self.target = target

    def write(self, batch: pa.RecordBatch) -> None:
        self.target.apply(batch)
        self.counters["rows_written"] += batch.num_rows


class MaterializedSource(Source):
    """Reads a materialized view's current rows (a snapshot, bounded)."""

    def __init__(self, con: duck.Connection, name: str, ctx: SourceContext) -> None:
        super().__init__()
        self.con = con
        self.name = name
        self.ctx = ctx
        self.reader: pa.RecordBatchReader | None = None

    def open(self) -> None:
        cols = ", ".join(quote(c) for c in self.ctx.columns)
        where = (
            ""
            if self.ctx.parallelism == 1
            else (f" WHERE rowid % {self.ctx.parallelism} = {self.ctx.instance}")
        )
        self.reader = duck.query_reader(
            self.con, f"SELECT {cols} FROM {quote(self.name)}{where}", self.ctx.batch_size
        )

    def read(self) -> pa.RecordBatch | None:
        assert self.reader is not None
        try:
            batch = self.reader.read_next_batch()
        except StopIteration:
            return None
        self.counters["rows_read"] += batch.num_rows
        return batch

    def position(self) -> dict[str, Any]:
        return {}

    def seek(self, position: Mapping[str, Any]) -> None:
        """A view is re-read from the start: it holds the current result, not a log."""


class MaterializedViewConnector(Connector):
    """The connector of one materialized view, bound to the session's database."""

    name = "materialized-view"
    sink_class = MaterializedSink

    def __init__(self, con: duck.Connection, target: MaterializedTable) -> None:
        self.con = con
        self.target = target

    def validate(self, table: TableContext, role: str) -> dict[str, Any]:
        return {}

    def accepts_updates(self, table: TableContext) -> bool:
        return True

    def create_source(self, table: TableContext, ctx: SourceContext) -> Source:
        return MaterializedSource(duck.cursor(self.con), self.target.name, ctx)

    def create_sink(self, table: TableContext, ctx: Any) -> Sink:
        target = self.target
        writer = MaterializedTable(duck.cursor(self.con), target.name, target.schema, target.mode)
        return MaterializedSink(writer)

    def describe(self, table: TableContext) -> str:
        return f"materialized view (state table {self.target.name})"
