"""A handle on the job's DuckDB state database, as operators use it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from streamsql import duck


@dataclass
class StateStore:
    """State tables of one job. Operators name their tables with their own prefix; the
    store remembers them so that the job can report their size and drop them at the end.
    """

    con: duck.Connection
    prefix: str = ""
    tables: list[str] = field(default_factory=list)

    def table_name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def create(
        self, name: str, schema: pa.Schema, primary_key: tuple[str, ...] | list[str] = ()
    ) -> str:
        """Create (or replace) a state table holding ``schema``'s columns; with a primary
        key, rows can be upserted (``INSERT OR REPLACE``, ``ON CONFLICT``).
        """
        full = self.table_name(name)
        duck.create_table(self.con, full, schema)
        if primary_key:
            columns = duck.run(self.con, f"DESCRIBE {quote(full)}")
            defs = ", ".join(f"{quote(c[0])} {c[1]}" for c in columns)
            keys = ", ".join(quote(k) for k in primary_key)
            duck.run(
                self.con,
                f"CREATE OR REPLACE TABLE {quote(full)} ({defs}, PRIMARY KEY ({keys}))",
            )
        if full not in self.tables:
            self.tables.append(full)
        return full

    def append(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        duck.insert_arrow(self.con, table, data)

    def query(self, sql: str, **inputs: pa.Table | pa.RecordBatch) -> pa.Table:
        return duck.query_arrow(self.con, sql, **inputs)

    def execute(self, sql: str) -> list[tuple]:
        return duck.run(self.con, sql)

    def execute_with(self, sql: str, **inputs: pa.Table | pa.RecordBatch) -> list[tuple]:
        """Run a statement that reads Arrow inputs bound to the given names."""
        with duck.registered(self.con, **inputs):
            return duck.run(self.con, sql)

    def row_count(self, table: str) -> int:
        return int(duck.run(self.con, f"SELECT count(*) FROM {duck.quote(table)}")[0][0])

    def drop_all(self) -> None:
        for table in self.tables:
            duck.run(self.con, f"DROP TABLE IF EXISTS {duck.quote(table)}")
        self.tables.clear()


quote = duck.quote
