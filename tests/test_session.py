"""The Python API: connect, execute, query, sql().stream(), explain."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest

import streamsql
from streamsql.errors import ParseError

SEQ = """
CREATE TABLE t (
    id BIGINT, name STRING,
    ts AS TO_TIMESTAMP_LTZ(id * 1000, 3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '30', 'rows-per-second' = '1000000',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '30',
        'fields.name.length' = '4');
"""
TUMBLE = "TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))"


@pytest.fixture
def session():
    s = streamsql.connect()
    s.execute(SEQ)
    return s


def test_query_returns_an_arrow_table(session):
    table = session.query("SELECT id, id * 2 AS twice FROM t WHERE id <= 3")
    assert isinstance(table, pa.Table)
    assert table.to_pydict() == {"id": [1, 2, 3], "twice": [2, 4, 6]}


def test_unnamed_columns_are_named_like_flink(session):
    table = session.query("SELECT id + 1, UPPER(name) FROM t WHERE id = 1")
    assert table.column_names == ["EXPR$0", "EXPR$1"]


def test_stream_yields_windows_as_they_close(session):
    handle = session.sql(
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end"
    )
    batches = list(handle.stream())
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    counts = [n for b in batches for n in b.column("n").to_pylist()]
    assert counts == [9, 10, 10, 1]  # seconds 1-9, 10-19, 20-29, 30
    assert handle.result is not None and handle.result.rows_read == 30


def test_stream_of_an_unbounded_query_stops_when_the_caller_does():
    s = streamsql.connect(settings={"execution.batch-size": "100"})
    s.execute(
        "CREATE TABLE forever (x INT) WITH ('connector' = 'datagen', 'rows-per-second' = '1000000')"
    )
    handle = s.sql("SELECT x FROM forever")
    rows = sum(b.num_rows for b in itertools.islice(handle.stream(), 5))
    assert rows >= 5
    assert handle.result is not None and handle.result.rows_read >= rows


def test_execute_returns_job_counters(session, tmp_path):
    result = session.execute(
        f"CREATE TABLE out (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');"
        f"INSERT INTO out SELECT window_start, COUNT(*) FROM {TUMBLE} "
        f"GROUP BY window_start, window_end;"
    )
    assert result.job is not None
    assert result.rows_read == 30 and result.rows_written == 4
    assert result.late_rows_dropped == 0
    ops = {c["operator"] for c in result.counters}
    assert {"Scan", "WindowAggregate", "Sink"} <= ops
    assert "job finished: 30 rows read" in str(result)
    assert result.job.cpu_s > 0  # the process's CPU time while the job ran


def test_show_describe_set(session):
    out = session.execute("SHOW TABLES; DESCRIBE t; SET 'parallelism.default' = '3'; SET")
    names, described, _, settings = (o.table for o in out.outputs)
    assert names.column("name").to_pylist() == ["t"]
    assert described.column("name").to_pylist() == ["id", "name", "ts"]
    assert "*ROWTIME*" in described.column("extras").to_pylist()[2]
    pairs = dict(
        zip(settings.column("key").to_pylist(), settings.column("value").to_pylist(), strict=True)
    )
    assert pairs["parallelism.default"] == "3"
    assert session.settings.parallelism == 3


def test_views_and_ctes(session):
    session.execute("CREATE VIEW small AS SELECT id, name FROM t WHERE id < 4")
    table = session.query("WITH s AS (SELECT id FROM small) SELECT id FROM s WHERE id > 1")
    assert table.column("id").to_pylist() == [2, 3]
    session.execute("DROP VIEW small")
    with pytest.raises(streamsql.BindError, match="unknown table or view 'small'"):
        session.query("SELECT * FROM small")


def test_explain_and_verbose(session):
    text = session.explain(
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end"
    )
    assert "== Optimized Logical Plan ==" in text and "== Physical Plan ==" in text
    assert "WindowAggregate" in text and "watermark" in text
    verbose = session.explain("SELECT id FROM t WHERE id > 1 + 1", verbose=True)
    assert "== After fold_constants ==" in verbose and "id > 2" in verbose
    assert "== After insert_exchanges ==" in verbose


def test_errors_carry_the_sql_for_the_caret(session):
    with pytest.raises(ParseError) as info:
        session.query("SELECT id FROM t WHERE")
    assert "^" in str(info.value)


def test_state_dir_holds_the_duckdb_database(tmp_path):
    s = streamsql.connect(state_dir=tmp_path / "state")
    s.execute(SEQ)
    s.query(f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end")
    assert (tmp_path / "state" / "state.duckdb").exists()
    s.close()
