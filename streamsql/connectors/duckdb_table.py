"""The duckdb connector: a table in a DuckDB database file, read in full or kept up to date.

Options: 'path' (the database file, created by a sink if missing) and 'table' (``name`` or
``schema.name``). The sink creates the table if it does not exist, with the declared columns
and the declared PRIMARY KEY. With a key it keeps the table equal to the query's current
result (upsert mode); without one it appends and refuses updating input.

Each batch is one DuckDB transaction. For a key touched several times in a batch only its
last change counts, which gives the same table as applying the changes one by one: +I/+U
write the whole row, -U/-D remove it. A table whose DuckDB PRIMARY KEY constraint exists gets
``INSERT OR REPLACE`` for upserts and a DELETE for removals (the two key sets are disjoint;
deleting and re-inserting a key in one transaction is slow on a DuckDB index); a table
without the constraint gets a DELETE of every touched key and an INSERT of the upserts.

With exactly-once checkpoints (``SinkContext.exactly_once``) the sink stages each batch
instead, as one row of the database's ``__streamsql_staged`` table (the batch in Arrow IPC
form, keyed by target table, job id, writer and sequence number), and a checkpoint's commit
applies the staged batches it covers to the target AND deletes them from staging in one
transaction: a commit repeated, or replayed by ``recover_sink`` after a crash, finds nothing
left to apply.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql import duck
from streamsql.changelog import last_per_key
from streamsql.connectors.base import (
    LOOKUP_CACHE_TTL,
    Connector,
    Option,
    Sink,
    SinkContext,
    Source,
    SourceContext,
    TableContext,
    register,
)
from streamsql.errors import ConfigError, ExecError, did_you_mean

OPTIONS = (
    Option("path", required=True, help="the DuckDB database file"),
    Option("table", required=True, help="a table in it, as name or schema.name"),
)

_UPSERT = pa.array([0, 2], pa.int8())  # +I and +U; -U (1) and -D (3) remove the key
_INTEGERS = "TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT"
#: DuckDB types that hold the same kind of value at another width or precision.
_FAMILIES = {
    **dict.fromkeys(_INTEGERS.split(), "integer"),
    **dict.fromkeys(("FLOAT", "DOUBLE"), "floating"),
    **dict.fromkeys(("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"), "timestamp"),
    "DECIMAL": "decimal",
}
_aliases = itertools.count()

#: The table (in the target's database) that holds batches staged for exactly-once commits.
STAGING = "__streamsql_staged"
#: A commit applies staged batches in groups of about this many rows (bounds its memory).
APPLY_ROWS = 262_144
_staging_lock = threading.Lock()  # two sinks creating the staging table at once conflict


# -- one connection per database file, a cursor per user ----------------------------------

_lock = threading.Lock()
_shared: dict[str, tuple[duck.Connection, int]] = {}


class Lease:
    """A cursor on the process's one connection to a database file.

    DuckDB lets one process write a file; sources and sinks of a job share that connection
    and each takes its own cursor (its own transactions). The connection closes when its
    last lease does, or when an unclosed lease is garbage-collected (a failed job).
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        with _lock:
            con, users = _shared.get(self.path, (None, 0))
            if con is None:
                try:
                    con = duck.connect(self.path)
                except duck.DuckDBError as e:
                    raise ExecError(f"cannot open DuckDB database '{path}': {e}") from None
            _shared[self.path] = (con, users + 1)
            self.cursor = duck.cursor(con)
        self.close = weakref.finalize(self, _release, self.path, self.cursor)


def _release(path: str, cursor: duck.Connection) -> None:
    with _lock:
        cursor.close()
        con, users = _shared[path]
        if users > 1:
            _shared[path] = (con, users - 1)
        else:
            del _shared[path]
            con.close()


# -- the sink ---------------------------------------------------------------------------------


class DuckDBSink(Sink):
    """Applies each batch of changes to the table in one transaction.

    Replaying batches after a restart applies their upserts and deletes again, which leaves
    a keyed table as it was (idempotent); an append-only table gets the rows twice. With
    exactly-once checkpoints batches are staged and applied by ``commit`` (see the module
    docstring), so nothing is applied twice or lost.
    """

    guarantee = "exactly-once (rows applied at checkpoints)"
    transactional = True

    def __init__(
        self, table: TableContext, path: str, name: str, ctx: SinkContext | None = None
    ) -> None:
        super().__init__()
        ctx = ctx if ctx is not None else SinkContext()
        self.table = table
        self.path, self.name = path, name
        self.relation = relation(name)
        self.columns = table.schema.names
        self.key = table.primary_key
        self.constrained = False  # whether DuckDB enforces the key (INSERT OR REPLACE works)
        self.lease: Lease | None = None
        self.exactly_once, self.job = ctx.exactly_once, ctx.job_id
        # Exactly-once: this sink object's staged batches are (writer, 1..seq). A fresh
        # writer per object keeps a restarted job's batches apart from a crashed one's.
        self.writer = f"{ctx.instance}-{uuid.uuid4().hex}"
        self.seq = 0
        # Two commits of this sink at once (an epoch's and a later one's covering it) would
        # delete the same staged rows in concurrent transactions, which DuckDB refuses.
        self._commit_lock = threading.Lock()

    def open(self) -> None:
        if self.lease is not None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.lease = Lease(self.path)
        try:
            types = duck.arrow_types(self.lease.cursor, self.table.schema)
            existing = duck.describe(self.lease.cursor, self.relation)
            if existing is None:
                self._create(types)
                existing = duck.describe(self.lease.cursor, self.relation) or []
            self.constrained = check_columns(self.table, self.name, existing, types)
            if self.exactly_once:
                create_staging(self.lease.cursor)
        except BaseException:
            self.close()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self.open()
        data, ops = split_ops(batch, self.columns)
        if not self.key:
            if ops is not None and pc.any(pc.not_equal(ops, 0)).as_py():
                raise ExecError(
                    f"DuckDB sink '{self.table.name}': table has no PRIMARY KEY; updates need one",
                    hint="declare PRIMARY KEY (...) NOT ENFORCED on the sink table",
                )
        else:
            self._check_keys(data)
        if self.exactly_once:
            self._stage(data, ops)
        elif not self.key:
            self._apply(None, data)
        else:
            self._upsert(data, ops)
        self.counters["rows_written"] += batch.num_rows

    def close(self) -> None:
        if self.lease is not None:
            self.lease.close()
            self.lease = None

    def pre_commit(self, epoch: int) -> Any:
        """Every batch written so far is staged (each write commits its own staging row):
        the handle names them all, up to the last sequence number.
        """
        if not self.exactly_once:
            return None
        return {"writer": self.writer, "through": self.seq}

    def commit(self, epoch: int, handle: Any) -> None:
        """Apply the handle's staged batches; on a cursor of its own (another thread)."""
        if not self.exactly_once or not handle or not handle.get("through"):
            return
        with self._commit_lock:
            lease = Lease(self.path)
            try:
                self._publish(lease.cursor, [handle])
            finally:
                lease.close()

    def _publish(self, cur: duck.Connection, handles: Iterable[Any], discard: bool = False) -> None:
        """Apply the staged batches the handles name (in sequence order per writer) and
        delete them from staging, in one transaction; ``discard``: delete every other staged
        batch of the job too (a recovery).
        """
        where = "target = ? AND writer = ? AND seq <= ?"
        try:
            with duck.transaction(cur):
                for h in handles:
                    if not h:
                        continue
                    params = [self.name.lower(), str(h["writer"]), int(h["through"])]
                    order = f"SELECT seq, n FROM {STAGING} WHERE {where} ORDER BY seq"
                    for group in _groups(duck.run(cur, order, params)):
                        self._apply_staged(cur, params[:2], group)
                    duck.run(cur, f"DELETE FROM {STAGING} WHERE {where}", params)
                if discard:
                    duck.run(
                        cur,
                        f"DELETE FROM {STAGING} WHERE target = ? AND job = ?",
                        [self.name.lower(), self.job],
                    )
        except duck.DuckDBError as e:
            raise ExecError(f"DuckDB sink '{self.table.name}' failed to commit: {e}") from None

    def _apply_staged(self, cur: duck.Connection, key: list[str], seqs: tuple[int, int]) -> None:
        """Apply the staged batches with sequence numbers in ``seqs`` (inclusive) as one."""
        rows = duck.run(
            cur,
            f"SELECT data FROM {STAGING} WHERE target = ? AND writer = ? AND seq BETWEEN ? AND ? "
            "ORDER BY seq",
            [*key, *seqs],
        )
        tables = (pa.ipc.open_stream(row[0]).read_all() for row in rows)
        staged = pa.concat_tables(tables, promote_options="permissive")
        batch = staged.combine_chunks().to_batches()[0]  # staged batches are never empty
        data, ops = split_ops(batch, self.columns)
        inputs, statements = self._changes(data, ops) if self.key else self._statements(None, data)
        with duck.registered(cur, **inputs):
            for sql in statements:
                duck.run(cur, sql)

    def _stage(self, data: pa.RecordBatch, ops: pa.Array | None) -> None:
        """Store one batch in the staging table (its own transaction: durable now)."""
        assert self.lease is not None
        if self.key and ops is None:  # every staged batch of a keyed table has _op
            ops = pa.array(np.zeros(data.num_rows, np.int8))
        batch = data.append_column("_op", ops) if self.key else data  # append: all +I
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as stream:
            stream.write_batch(batch)
        self.seq += 1
        row = [self.name.lower(), self.job, self.writer, self.seq, batch.num_rows]
        try:
            duck.run(
                self.lease.cursor,
                f"INSERT INTO {STAGING} VALUES (?, ?, ?, ?, ?, ?)",
                [*row, sink.getvalue().to_pybytes()],
            )
        except duck.DuckDBError as e:
            raise ExecError(f"DuckDB sink '{self.table.name}' failed to stage rows: {e}") from None

    def _check_keys(self, data: pa.RecordBatch) -> None:
        for k in self.key:
            if data.column(k).null_count:
                raise ExecError(
                    f"DuckDB sink '{self.table.name}': NULL in PRIMARY KEY column '{k}'"
                )

    def _upsert(self, data: pa.RecordBatch, ops: pa.Array | None) -> None:
        tables, statements = self._changes(data, ops)
        self._run(tables, statements)

    def _changes(
        self, data: pa.RecordBatch, ops: pa.Array | None
    ) -> tuple[dict[str, pa.RecordBatch], list[str]]:
        """The statements that apply a batch of changes to a keyed table (last per key)."""
        last = last_per_key(data, self.key)
        rows = data.take(last)
        upsert = pc.is_in(ops.take(last), value_set=_UPSERT) if ops is not None else None
        kept = rows if upsert is None else rows.filter(upsert)
        if not self.constrained:
            gone: pa.RecordBatch | None = rows
        else:
            gone = None if upsert is None else rows.filter(pc.invert(upsert))
        return self._statements(gone, kept)

    def _apply(self, gone: pa.RecordBatch | None, kept: pa.RecordBatch) -> None:
        """Delete the keys of ``gone`` and write ``kept``, in one transaction."""
        self._run(*self._statements(gone, kept))

    def _statements(
        self, gone: pa.RecordBatch | None, kept: pa.RecordBatch
    ) -> tuple[dict[str, pa.RecordBatch], list[str]]:
        """The Arrow inputs (by name) and statements that delete ``gone`` and write ``kept``."""
        n = next(_aliases)
        tables, statements = {}, []
        if gone is not None and gone.num_rows:
            tables[f"__gone_{n}"] = gone
            on = " AND ".join(f"t.{duck.quote(k)} = g.{duck.quote(k)}" for k in self.key)
            statements.append(f"DELETE FROM {self.relation} AS t USING __gone_{n} AS g WHERE {on}")
        if kept.num_rows:
            tables[f"__kept_{n}"] = kept
            verb = "INSERT OR REPLACE INTO" if self.constrained else "INSERT INTO"
            cols = ", ".join(duck.quote(c) for c in self.columns)
            statements.append(f"{verb} {self.relation} ({cols}) SELECT {cols} FROM __kept_{n}")
        return tables, statements

    def _run(self, tables: dict[str, pa.RecordBatch], statements: list[str]) -> None:
        assert self.lease is not None
        cur = self.lease.cursor
        try:
            with duck.registered(cur, **tables), duck.transaction(cur):
                for sql in statements:
                    duck.run(cur, sql)
        except duck.DuckDBError as e:
            raise ExecError(f"DuckDB sink '{self.table.name}' failed to write: {e}") from None

    def _create(self, types: list[str]) -> None:
        assert self.lease is not None
        columns = [
            f"{duck.quote(f.name)} {t}" + ("" if f.nullable else " NOT NULL")
            for f, t in zip(self.table.schema, types, strict=True)
        ]
        if self.key:
            columns.append("PRIMARY KEY (" + ", ".join(duck.quote(k) for k in self.key) + ")")
        parts = self.name.split(".")
        try:
            if len(parts) == 2:
                duck.run(self.lease.cursor, f"CREATE SCHEMA IF NOT EXISTS {duck.quote(parts[0])}")
            body = ", ".join(columns)
            duck.run(self.lease.cursor, f"CREATE TABLE IF NOT EXISTS {self.relation} ({body})")
        except duck.DuckDBError as e:
            raise ExecError(f"cannot create DuckDB table '{self.name}': {e}") from None


def create_staging(cur: duck.Connection) -> None:
    """Create the staging table of exactly-once sinks if the database has none."""
    with _staging_lock:
        duck.run(
            cur,
            f"CREATE TABLE IF NOT EXISTS {STAGING} (target VARCHAR, job VARCHAR, "
            "writer VARCHAR, seq BIGINT, n BIGINT, data BLOB)",
        )


def _groups(seqs: Sequence[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    """Ranges (first, last) of staged batches, given as (seq, rows) in order, holding about
    APPLY_ROWS rows each (at least one batch).
    """
    first, rows = None, 0
    for seq, n in seqs:
        if first is None:
            first = seq
        rows += n
        if rows >= APPLY_ROWS:
            yield first, seq
            first, rows = None, 0
    if first is not None:
        yield first, seqs[-1][0]


def split_ops(
    batch: pa.RecordBatch, columns: Sequence[str]
) -> tuple[pa.RecordBatch, pa.Array | None]:
    """The physical columns (named as declared) and the ``_op`` column if there is one."""
    n = len(columns)
    data = pa.RecordBatch.from_arrays(batch.columns[:n], names=list(columns))
    if batch.num_columns == n:
        return data, None
    ops = batch.column(n)
    if ops.null_count or pc.min(ops).as_py() < 0 or pc.max(ops).as_py() > 3:
        raise ExecError("the _op column holds a value that is not a changelog kind (0..3)")
    return data, ops.cast(pa.int8())


def check_columns(
    table: TableContext, name: str, existing: list[tuple[str, str, bool]], types: list[str]
) -> bool:
    """Raise ConfigError unless an existing DuckDB table fits the declared one.

    Columns match by name (case-insensitive, as DuckDB resolves them); types are compatible
    when they are equal or differ only in width or precision (INTEGER and BIGINT, DOUBLE and
    FLOAT, DECIMAL(10, 2) and DECIMAL(18, 4), TIMESTAMP and TIMESTAMP_MS). Returns whether
    DuckDB enforces the declared PRIMARY KEY; a different DuckDB key is an error.
    """
    there = {col.lower(): (col, typ) for col, typ, _ in existing}
    here = {f.name.lower() for f in table.schema}

    def mismatch(what: str, hint: str | None = None) -> ConfigError:
        return ConfigError(
            f"DuckDB table '{name}' does not match '{table.name}': {what}",
            option="table",
            hint=hint,
        )

    for f, typ in zip(table.schema, types, strict=True):
        if f.name.lower() not in there:
            raise mismatch(
                f"it has no column '{f.name}'",
                did_you_mean(f.name, [c for c, _, _ in existing], "column"),
            )
        col, actual = there[f.name.lower()]
        if _family(actual) != _family(typ):
            raise mismatch(f"column '{col}' is {actual} there, {typ} here")
    extra = [col for col, _, _ in existing if col.lower() not in here]
    if extra:
        raise mismatch(f"it has column '{extra[0]}', which '{table.name}' does not declare")
    key_there = {col.lower() for col, _, pk in existing if pk}
    if key_there and key_there != {k.lower() for k in table.primary_key}:
        shown = ", ".join(col for col, _, pk in existing if pk)
        declared = ", ".join(table.primary_key) or "none"
        raise mismatch(
            f"its PRIMARY KEY is ({shown}), '{table.name}' declares {declared}",
            f"declare PRIMARY KEY ({shown}) NOT ENFORCED",
        )
    return bool(key_there)


def _family(duck_type: str) -> str:
    base = duck_type.split("(", 1)[0].strip()
    return _FAMILIES.get(base, duck_type)


# -- the source -------------------------------------------------------------------------------


class DuckDBSource(Source):
    """Reads the requested columns of the table, cast to the declared types.

    At parallelism > 1 instance i reads the rows with ``rowid % parallelism = i`` (a view
    is read whole by instance 0). ``position()`` counts the rows delivered, but DuckDB gives
    no row order that survives changes to the table, so ``seek()`` starts again from the
    first row: a resumed DuckDB source delivers rows again (at-least-once).
    """

    bounded = True

    def __init__(self, table: TableContext, path: str, name: str, ctx: SourceContext) -> None:
        super().__init__()
        self.table, self.path, self.name = table, path, name
        self.relation = relation(name)
        self.columns = list(ctx.columns)
        self.target = pa.schema([table.schema.field(c) for c in self.columns])
        self.batch_size = max(1, ctx.batch_size)
        self.instance, self.parallelism = ctx.instance, ctx.parallelism
        self.lease: Lease | None = None
        self.reader: pa.RecordBatchReader | None = None
        self.offset = 0

    def open(self) -> None:
        if self.reader is not None:
            return
        if not os.path.exists(self.path):
            raise ExecError(f"DuckDB database '{self.path}' does not exist")
        self.lease = Lease(self.path)
        cur = self.lease.cursor
        existing = duck.describe(cur, self.relation)
        if existing is None:
            raise ExecError(f"DuckDB database '{self.path}' has no table '{self.name}'")
        by_lower = {col.lower(): col for col, _, _ in existing}
        select = []
        for c in self.columns:
            if c.lower() not in by_lower:
                raise ExecError(
                    f"DuckDB table '{self.name}' has no column '{c}'",
                    hint=did_you_mean(c, list(by_lower.values()), "column"),
                )
            select.append(f"{duck.quote(by_lower[c.lower()])} AS {duck.quote(c)}")
        sql = f"SELECT {', '.join(select) or '1 AS __row'} FROM {self.relation}"
        if self.parallelism > 1:
            if self._is_table():
                sql += f" WHERE rowid % {int(self.parallelism)} = {int(self.instance)}"
            elif self.instance > 0:
                sql += " WHERE false"
        try:
            self.reader = duck.query_reader(cur, sql, self.batch_size)
        except duck.DuckDBError as e:
            raise ExecError(f"cannot read DuckDB table '{self.name}': {e}") from None
        self.offset = 0

    def read(self) -> pa.RecordBatch | None:
        self.open()
        assert self.reader is not None
        try:
            batch = self.reader.read_next_batch()
        except StopIteration:
            return None
        except duck.DuckDBError as e:
            raise ExecError(f"cannot read DuckDB table '{self.name}': {e}") from None
        self.offset += batch.num_rows
        self.counters["rows_read"] += batch.num_rows
        return self._cast(batch)

    def position(self) -> dict[str, int]:
        return {"offset": self.offset}

    def seek(self, position: Mapping[str, Any]) -> None:
        self._drop_reader()

    def close(self) -> None:
        self._drop_reader()
        if self.lease is not None:
            self.lease.close()
            self.lease = None

    def _drop_reader(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        self.offset = 0

    def _is_table(self) -> bool:
        assert self.lease is not None
        parts = self.name.split(".")
        schema, name = (parts[0], parts[1]) if len(parts) == 2 else ("main", parts[0])
        found = duck.run(
            self.lease.cursor,
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
            [schema, name],
        )
        return found[0][0] > 0

    def _cast(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.columns:
            return batch.select([])
        arrays = []
        for column, field in zip(batch.columns, self.target, strict=True):
            try:
                arrays.append(column if column.type == field.type else column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ExecError(
                    f"DuckDB table '{self.name}': column '{field.name}' does not fit "
                    f"{field.type}: {e}"
                ) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.target)


# -- the connector ----------------------------------------------------------------------------


def relation(name: str) -> str:
    """The SQL that names a table given as ``name`` or ``schema.name``.

    >>> relation("sales.orders")
    '"sales"."orders"'
    """
    return ".".join(duck.quote(part) for part in name.split("."))


@register
class DuckDBConnector(Connector):
    """``'connector' = 'duckdb'``: a table in a DuckDB database file."""

    name = "duckdb"
    source_options = (*OPTIONS, LOOKUP_CACHE_TTL)
    sink_options = OPTIONS
    sink_class = DuckDBSink

    def validate(self, table: TableContext, role: str) -> dict[str, str]:
        opts = super().validate(table, role)
        parts = opts["table"].split(".")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise ConfigError(
                f"option 'table': {opts['table']!r} is not a table name",
                option="table",
                hint="write 'name' or 'schema.name'",
            )
        for k in table.primary_key:
            if k not in table.schema.names:
                raise ConfigError(f"PRIMARY KEY column '{k}' is not a column of '{table.name}'")
        return opts

    def accepts_updates(self, table: TableContext) -> bool:
        """Whether the sink can take an updating stream: only with a PRIMARY KEY."""
        return bool(table.primary_key)

    def create_source(self, table: TableContext, ctx: SourceContext) -> Source:
        opts = self.validate(table, "source")
        missing = [c for c in ctx.columns if c not in table.schema.names]
        if missing:
            raise ValueError(f"table '{table.name}' has no column {missing[0]!r}")
        return DuckDBSource(table, opts["path"], opts["table"], ctx)

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        opts = self.validate(table, "sink")
        return DuckDBSink(table, opts["path"], opts["table"], ctx)

    def recover_sink(self, table: TableContext, job_id: str, handles: list[Any]) -> None:
        """Apply the staged batches the checkpoint's handles name, then delete the job's
        other staged batches (written after the checkpoint, written again on restart).
        """
        opts = self.validate(table, "sink")
        if not os.path.exists(opts["path"]):
            return
        ctx = SinkContext(job_id=job_id, exactly_once=True)
        sink = DuckDBSink(table, opts["path"], opts["table"], ctx)
        lease = Lease(opts["path"])
        try:
            if duck.describe(lease.cursor, STAGING) is None:
                return  # nothing was ever staged in this database
            sink.open()
            sink._publish(lease.cursor, handles, discard=True)
        finally:
            sink.close()
            lease.close()

    def describe(self, table: TableContext) -> str:
        opts = table.options
        return f"duckdb(path={opts.get('path', '')}, table={opts.get('table', '')})"
