"""The duckdb connector: upserts by primary key, append-only tables, reading a table back."""

from __future__ import annotations

import gc
import itertools
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql import duck
from streamsql.connectors import get_connector
from streamsql.connectors.base import SinkContext, TableContext
from streamsql.connectors.duckdb_table import DuckDBSink, _shared, last_per_key
from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import read_batches, read_rows, source, write_all

SCHEMA = pa.schema([("k", pa.int64()), ("v", pa.string()), ("n", pa.float64())])
KINDS = {"+I": 0, "-U": 1, "+U": 2, "-D": 3}


def dtable(
    path: Path, key: tuple[str, ...] = ("k",), schema: pa.Schema = SCHEMA, **extra: str
) -> TableContext:
    options = {"connector": "duckdb", "path": str(path), "table": "out", **extra}
    return TableContext("sink_t", schema, options, primary_key=key)


def changes(*rows: tuple) -> pa.RecordBatch:
    """A changelog batch from (kind, k, v) rows; n is k / 2."""
    return pa.record_batch(
        {
            "k": pa.array([r[1] for r in rows], pa.int64()),
            "v": pa.array([r[2] for r in rows], pa.string()),
            "n": pa.array([None if r[1] is None else r[1] / 2 for r in rows], pa.float64()),
            "_op": pa.array([KINDS[r[0]] for r in rows], pa.int8()),
        }
    )


def inserts(*rows: tuple) -> pa.RecordBatch:
    return changes(*(("+I", *r) for r in rows)).drop_columns(["_op"])


def contents(t: TableContext) -> list[tuple]:
    src = source(t)
    rows = read_rows(src)
    src.close()
    return sorted((r["k"], r["v"]) for r in rows)


def describe(path: Path, table: str = "out") -> list[tuple[str, str, bool]] | None:
    con = duck.connect(str(path))
    try:
        return duck.describe(con, table)
    finally:
        con.close()


def run_sql(path: Path, sql: str) -> None:
    con = duck.connect(str(path))
    try:
        duck.run(con, sql)
    finally:
        con.close()


# -- creating and checking the table -----------------------------------------------------


def test_sink_creates_the_table_with_its_primary_key(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "out.duckdb"
    write_all(dtable(db), [inserts((1, "a"))])
    assert describe(db) == [("k", "BIGINT", True), ("v", "VARCHAR", False), ("n", "DOUBLE", False)]
    assert _shared == {}  # the last user closed the connection


def test_schema_qualified_table_and_not_null_columns(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("k", pa.int32(), nullable=False), ("ts", pa.timestamp("ms"))])
    t = dtable(tmp_path / "db", key=(), schema=schema, table="sales.Orders")
    write_all(
        t, [pa.record_batch({"k": pa.array([1], pa.int32()), "ts": pa.array([0], schema[1].type)})]
    )
    assert describe(tmp_path / "db", "sales.orders") == [
        ("k", "INTEGER", False),
        ("ts", "TIMESTAMP_MS", False),
    ]
    assert read_rows(source(t))[0]["k"] == 1


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        ("CREATE TABLE out (k BIGINT PRIMARY KEY, v VARCHAR)", "it has no column 'n'"),
        (
            "CREATE TABLE out (k BIGINT PRIMARY KEY, v INTEGER, n DOUBLE)",
            "column 'v' is INTEGER there, VARCHAR here",
        ),
        (
            "CREATE TABLE out (k BIGINT PRIMARY KEY, v VARCHAR, n DOUBLE, x INT)",
            "it has column 'x', which 'sink_t' does not declare",
        ),
        (
            "CREATE TABLE out (k BIGINT, v VARCHAR PRIMARY KEY, n DOUBLE)",
            r"its PRIMARY KEY is \(v\), 'sink_t' declares k",
        ),
    ],
)
def test_an_existing_table_that_does_not_match_is_refused(
    tmp_path: Path, ddl: str, message: str
) -> None:
    db = tmp_path / "db"
    run_sql(db, ddl)
    with pytest.raises(ConfigError, match=message) as info:
        write_all(dtable(db), [])
    assert info.value.option == "table"
    assert _shared == {}


def test_an_existing_table_with_compatible_types_is_used(tmp_path: Path) -> None:
    db = tmp_path / "db"
    run_sql(db, "CREATE TABLE out (N FLOAT, K INTEGER PRIMARY KEY, V VARCHAR)")
    t = dtable(db)
    write_all(t, [inserts((1, "a"), (2, "b")), changes(("+U", 1, "c"))])
    assert contents(t) == [(1, "c"), (2, "b")]


def test_a_key_declared_on_a_table_without_one_is_kept_by_the_sink(tmp_path: Path) -> None:
    db = tmp_path / "db"
    run_sql(db, "CREATE TABLE out (k BIGINT, v VARCHAR, n DOUBLE)")
    t = dtable(db)
    write_all(t, [inserts((1, "a"), (2, "b")), changes(("+U", 1, "c"), ("-D", 2, "b"))])
    assert contents(t) == [(1, "c")]


def test_a_keyless_sink_refuses_a_keyed_table(tmp_path: Path) -> None:
    db = tmp_path / "db"
    run_sql(db, "CREATE TABLE out (k BIGINT PRIMARY KEY, v VARCHAR, n DOUBLE)")
    with pytest.raises(ConfigError, match="declares none") as info:
        write_all(dtable(db, key=()), [])
    assert info.value.hint == "declare PRIMARY KEY (k) NOT ENFORCED"


# -- upserts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (changes(("+I", 1, "a"), ("-U", 1, "a"), ("+U", 1, "b"), ("-D", 1, "b")), [(2, "x")]),
        (changes(("-U", 1, "a"), ("+U", 1, "b")), [(1, "b"), (2, "x")]),
        (changes(("-D", 2, "x"), ("+I", 2, "y")), [(1, "a"), (2, "y")]),
        (changes(("+I", 3, "c"), ("-D", 2, "x"), ("+U", 3, "d")), [(1, "a"), (3, "d")]),
        (changes(("-U", 1, "a"), ("+U", 4, "a")), [(2, "x"), (4, "a")]),  # the key changes
        (changes(("-D", 9, "z")), [(1, "a"), (2, "x")]),  # an absent key
        (inserts((1, "p"), (5, "q"), (1, "r")), [(1, "r"), (2, "x"), (5, "q")]),
    ],
)
def test_changes_apply_in_batch_order(
    tmp_path: Path, batch: pa.RecordBatch, expected: list[tuple]
) -> None:
    t = dtable(tmp_path / "db")
    sink = write_all(t, [inserts((1, "a"), (2, "x")), batch])
    assert contents(t) == expected
    assert sink.counters["rows_written"] == 2 + batch.num_rows


def test_changes_across_batches(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    batches = [
        changes(("+I", 1, "a")),
        changes(("-U", 1, "a"), ("+U", 1, "b"), ("+I", 2, "c")),
        changes(("-D", 1, "b")),
        changes(("+I", 1, "d")),
        pa.record_batch(
            {"k": [], "v": [], "n": [], "_op": []}, schema=changes(("+I", 0, "")).schema
        ),
    ]
    write_all(t, batches)
    assert contents(t) == [(1, "d"), (2, "c")]
    assert sorted(r["n"] for r in read_rows(source(t, ["n"]))) == [0.5, 1.0]


def test_a_null_key_fails_the_batch_and_writes_nothing(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    sink = get_connector("duckdb").create_sink(t, SinkContext())
    sink.open()
    sink.write(inserts((1, "a")))
    with pytest.raises(ExecError, match="NULL in PRIMARY KEY column 'k'"):
        sink.write(changes(("+I", 2, "b"), ("+I", None, "c")))
    sink.close()
    assert contents(t) == [(1, "a")]


def test_a_failing_statement_rolls_the_batch_back(tmp_path: Path) -> None:
    schema = pa.schema([("k", pa.int64()), ("v", pa.string()), ("n", pa.float64())])
    db = tmp_path / "db"
    run_sql(db, "CREATE TABLE out (k BIGINT PRIMARY KEY, v VARCHAR, n DOUBLE CHECK (n < 10))")
    t = dtable(db, schema=schema)
    sink = get_connector("duckdb").create_sink(t, SinkContext())
    sink.open()
    sink.write(inserts((1, "a")))
    with pytest.raises(ExecError, match="failed to write"):
        sink.write(changes(("-D", 1, "a"), ("+I", 40, "big")))
    sink.close()
    assert contents(t) == [(1, "a")]


def test_a_bad_changelog_kind_is_refused(tmp_path: Path) -> None:
    batch = inserts((1, "a")).append_column("_op", pa.array([7], pa.int8()))
    with pytest.raises(ExecError, match="not a changelog kind"):
        write_all(dtable(tmp_path / "db"), [batch])


def test_two_instances_share_one_connection(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    sinks = [get_connector("duckdb").create_sink(t, SinkContext(i, 2)) for i in range(2)]
    for s in sinks:
        s.open()
    assert len(_shared) == 1 and next(iter(_shared.values()))[1] == 2
    sinks[0].write(inserts((1, "a"), (3, "c")))
    sinks[1].write(inserts((2, "b"), (4, "d")))
    sinks[0].write(changes(("-U", 1, "a"), ("+U", 1, "A"), ("-D", 3, "c")))
    sinks[1].write(changes(("-U", 4, "d"), ("+U", 4, "D")))
    sinks[0].close()
    assert len(_shared) == 1
    sinks[1].close()
    assert _shared == {}
    assert contents(t) == [(1, "A"), (2, "b"), (4, "D")]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(list(KINDS)), st.integers(0, 4), st.sampled_from("abc")),
        max_size=30,
    ),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    enforced=st.booleans(),
)
def test_the_table_equals_the_changes_applied_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple], cuts: list[int], enforced: bool
) -> None:
    """Whether DuckDB enforces the key or not (the sink keeps it either way)."""
    model: dict[int, str] = {}
    for kind, k, v in ops:
        if kind in ("+I", "+U"):
            model[k] = v
        else:
            model.pop(k, None)
    bounds = sorted({0, len(ops), *(c for c in cuts if c < len(ops))})
    batches = [changes(*ops[a:b]) for a, b in itertools.pairwise(bounds)]
    db = tmp_path_factory.mktemp("prop") / "db"
    if not enforced:
        run_sql(db, "CREATE TABLE out (k BIGINT, v VARCHAR, n DOUBLE)")
    t = dtable(db)
    write_all(t, batches)
    assert contents(t) == sorted(model.items())


def test_an_unclosed_sink_releases_its_connection_when_collected(tmp_path: Path) -> None:
    sink = get_connector("duckdb").create_sink(dtable(tmp_path / "db"), SinkContext())
    sink.open()
    sink.write(inserts((1, "a")))
    assert len(_shared) == 1
    del sink
    gc.collect()
    assert _shared == {}


def test_last_per_key_with_a_composite_key() -> None:
    data = pa.record_batch({"a": [1, 1, 2, 1], "b": ["x", "y", "x", "x"]})
    assert last_per_key(data, ["a", "b"]).to_pylist() == [1, 2, 3]


# -- append-only tables ------------------------------------------------------------------------


def test_without_a_key_rows_are_appended(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db", key=())
    write_all(t, [inserts((1, "a"), (1, "a")), changes(("+I", 2, "b"))])
    assert contents(t) == [(1, "a"), (1, "a"), (2, "b")]
    assert describe(tmp_path / "db")[0] == ("k", "BIGINT", False)


def test_without_a_key_updates_are_refused(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db", key=())
    with pytest.raises(ExecError, match="table has no PRIMARY KEY; updates need one"):
        write_all(t, [changes(("+I", 1, "a"), ("-U", 1, "a"), ("+U", 1, "b"))])
    assert contents(t) == []


# -- the source --------------------------------------------------------------------------------


def test_the_source_reads_back_what_the_sink_wrote(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    write_all(t, [inserts(*((i, f"v{i}") for i in range(1000)))])
    one = read_batches(source(t, ["v", "k"], batch_size=1), limit=3)
    assert [b.num_rows for b in one] == [1, 1, 1]
    assert one[0].schema.names == ["v", "k"]
    big = read_batches(source(t, ["n"], batch_size=1 << 20))
    assert sum(b.num_rows for b in big) == 1000
    assert big[0].schema == pa.schema([("n", pa.float64())])
    assert sum(b.num_rows for b in read_batches(source(t, []))) == 1000


def test_the_source_casts_to_the_declared_types_and_splits_by_instance(tmp_path: Path) -> None:
    db = tmp_path / "db"
    run_sql(
        db, "CREATE TABLE out AS SELECT range::INTEGER AS k, range::VARCHAR AS v FROM range(10)"
    )
    schema = pa.schema([("k", pa.int64()), ("v", pa.string())])
    t = dtable(db, key=(), schema=schema)
    parts = [read_rows(source(t, ["k"], instance=i, parallelism=3)) for i in range(3)]
    assert all(parts)
    assert sorted(r["k"] for p in parts for r in p) == list(range(10))
    src = source(t, ["k"], batch_size=4)
    first = read_batches(src, limit=1)[0]
    assert first.schema.field("k").type == pa.int64()
    assert src.position() == {"offset": 4}
    src.seek(src.position())  # DuckDB has no stable row order: a resume starts again
    assert sum(b.num_rows for b in read_batches(src)) == 10
    src.close()


@pytest.mark.parametrize(
    ("table", "columns", "message"),
    [
        ("nope", ["k"], "has no table 'nope'"),
        ("out", ["k", "w"], "DuckDB table 'out' has no column 'w'"),
    ],
)
def test_the_source_names_what_is_missing(
    tmp_path: Path, table: str, columns: list[str], message: str
) -> None:
    db = tmp_path / "db"
    run_sql(db, "CREATE TABLE out (k BIGINT, v VARCHAR)")
    schema = pa.schema([("k", pa.int64()), ("w", pa.string())])
    src = source(dtable(db, key=(), schema=schema, table=table), columns)
    with pytest.raises(ExecError, match=message):
        src.open()
    src.close()
    with pytest.raises(ExecError, match="does not exist"):
        source(dtable(tmp_path / "absent"), ["k"]).open()
    assert not (tmp_path / "absent").exists()


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        ({"path": "/d"}, "needs option 'table'", None),
        ({"table": "t"}, "needs option 'path'", None),
        ({"path": "/d", "table": "t", "tabel": "x"}, "has no sink option 'tabel'", "'table'"),
        ({"path": "/d", "table": "a.b.c"}, "'a.b.c' is not a table name", "schema.name"),
        ({"path": "/d", "table": "a."}, "is not a table name", None),
    ],
)
def test_option_errors(options: dict, message: str, hint: str | None) -> None:
    t = TableContext("t", SCHEMA, {"connector": "duckdb", **options})
    with pytest.raises(ConfigError, match=message) as info:
        get_connector("duckdb").validate(t, "sink")
    if hint is not None:
        assert hint in (info.value.hint or ""), info.value.hint


def test_connector_facts(tmp_path: Path) -> None:
    duckdb = get_connector("duckdb")
    assert duckdb.sink_class is DuckDBSink
    assert duckdb.guarantee() == "exactly-once (rows applied at checkpoints)"
    assert duckdb.sink_class.transactional
    assert duckdb.accepts_updates(dtable(tmp_path))
    assert not duckdb.accepts_updates(dtable(tmp_path, key=()))
    assert duckdb.describe(dtable(tmp_path)) == f"duckdb(path={tmp_path}, table=out)"
    assert duckdb.is_bounded(dtable(tmp_path))
    with pytest.raises(ConfigError, match="PRIMARY KEY column 'x'"):
        duckdb.validate(dtable(tmp_path, key=("x",)), "sink")
