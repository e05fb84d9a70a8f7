"""The one place that talks to DuckDB: connections, statements and Arrow results.

DuckDB's Python API changed between 1.x and 2.x (2.x renamed the Arrow result methods to
``to_arrow_table``/``to_arrow_reader`` and insists that every result is consumed before the
next statement); everything here works with both, so no other module imports duckdb.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

Connection = duckdb.DuckDBPyConnection
DuckDBError = duckdb.Error

_names = itertools.count()


def connect(path: str | None = None, *, threads: int | None = None) -> Connection:
    """A DuckDB connection: in memory when ``path`` is None."""
    con = duckdb.connect(path or ":memory:")
    if threads:
        run(con, f"SET threads = {int(threads)}")
    return con


def cursor(con: Connection) -> Connection:
    """A second connection to the same database (one per thread or operator instance)."""
    return con.cursor()


def run(con: Connection, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Run a statement and return its rows (an empty list for DDL and DML)."""
    result = con.execute(sql, params) if params is not None else con.execute(sql)
    try:
        return result.fetchall()
    except duckdb.InvalidInputException:
        return []


def run_many(con: Connection, sql: str, rows: list[tuple]) -> None:
    """Run a statement once per parameter row (one prepared statement)."""
    con.executemany(sql, rows)


def query_arrow(con: Connection, sql: str, **tables: pa.Table | pa.RecordBatch) -> pa.Table:
    """Run a query over Arrow inputs (bound to the given names) and return an Arrow table.

    >>> con = connect()
    >>> query_arrow(con, "SELECT max(x) AS s FROM t", t=pa.table({"x": [1, 2]})).to_pylist()
    [{'s': 2}]
    """
    with registered(con, **tables):
        rel = con.sql(sql)
        return _to_table(rel)


def query_reader(con: Connection, sql: str, batch_size: int) -> pa.RecordBatchReader:
    """A streaming reader of the query's result, ``batch_size`` rows at a time."""
    rel = con.sql(sql)
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(batch_size)
    return rel.fetch_record_batch(batch_size)  # duckdb 1.x


def _to_table(rel: Any) -> pa.Table:
    if rel is None:
        return pa.table({})
    if hasattr(rel, "to_arrow_table"):
        return rel.to_arrow_table()
    return rel.arrow()  # duckdb 1.x


@contextlib.contextmanager
def registered(con: Connection, **tables: pa.Table | pa.RecordBatch) -> Iterator[None]:
    """Make Arrow data visible to SQL under the given names for the duration of a block."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def insert_arrow(con: Connection, table_name: str, data: pa.Table | pa.RecordBatch) -> None:
    """Append Arrow rows to an existing DuckDB table whose columns they hold, in order.

    (A relation insert: cheaper than registering the data as a view for an INSERT.)
    """
    if data.num_rows == 0:
        return
    con.from_arrow(data).insert_into(quote(table_name))


def describe(con: Connection, relation: str) -> list[tuple[str, str, bool]] | None:
    """The columns of a table or view: (name, DuckDB type, in the primary key), or None.

    ``relation`` is SQL text naming it (quoted as needed); None means it does not exist.

    >>> con = connect()
    >>> _ = run(con, "CREATE TABLE t (k INTEGER PRIMARY KEY, v VARCHAR)")
    >>> describe(con, "t"), describe(con, "nope")
    ([('k', 'INTEGER', True), ('v', 'VARCHAR', False)], None)
    """
    try:
        rows = run(con, f"DESCRIBE {relation}")
    except duckdb.CatalogException:
        return None
    return [(row[0], row[1], row[3] == "PRI") for row in rows]


def arrow_types(con: Connection, schema: pa.Schema) -> list[str]:
    """The DuckDB type that holds each column of an Arrow schema, as DuckDB spells it.

    >>> arrow_types(connect(), pa.schema([("t", pa.timestamp("ms")), ("s", pa.string())]))
    ['TIMESTAMP_MS', 'VARCHAR']
    """
    alias = f"__types_{next(_names)}"
    with registered(con, **{alias: schema.empty_table()}):
        return [row[1] for row in run(con, f"DESCRIBE SELECT * FROM {alias}")]


@contextlib.contextmanager
def transaction(con: Connection) -> Iterator[None]:
    """Run a block as one transaction: committed at its end, rolled back if anything raises."""
    run(con, "BEGIN TRANSACTION")
    try:
        yield
        run(con, "COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            run(con, "ROLLBACK")
        raise


def quote(name: str) -> str:
    """A DuckDB identifier, quoted.

    >>> quote('we"ird')
    '"we""ird"'
    """
    return '"' + name.replace('"', '""') + '"'


def create_table(
    con: Connection, table_name: str, schema: pa.Schema, *, replace: bool = True
) -> None:
    """Create a DuckDB table whose columns hold the Arrow schema's types."""
    empty = schema.empty_table()
    alias = f"__schema_{next(_names)}"
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
    with registered(con, **{alias: empty}):
        run(con, f"{verb} {quote(table_name)} AS SELECT * FROM {alias}")
