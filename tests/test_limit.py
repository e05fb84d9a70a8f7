"""LIMIT / OFFSET / FETCH: the first rows of an append-only query end the job by itself (also
over an unbounded source); over a bounded updating query, the final result is limited.
"""

from __future__ import annotations

import threading
import time
import uuid

import pyarrow as pa
import pytest

import streamsql
from streamsql.connectors.memory import stream
from streamsql.errors import PlanError
from streamsql.plan.changelog import OP
from streamsql.plan.limit import Limit
from streamsql.plan.nodes import Scan
from streamsql.runtime.operators import limit as limit_ops
from streamsql.runtime.operators.limit import LimitOperator

RUNTIMES = ("deterministic", "threads")
TOTAL = 2_000

BOUNDED = f"""
CREATE TABLE t (x BIGINT, name STRING) WITH ('connector' = 'datagen',
    'number-of-rows' = '{TOTAL}', 'rows-per-second' = '100000000',
    'fields.x.kind' = 'sequence', 'fields.x.start' = '1', 'fields.x.end' = '{TOTAL}',
    'fields.name.length' = '3');
"""
#: Far more rows than a LIMIT job reads, read-ahead into the channels included.
BIG = 1_000_000
BIG_TABLE = f"""
CREATE TABLE big (x BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '{BIG}',
    'rows-per-second' = '100000000', 'fields.x.kind' = 'sequence', 'fields.x.start' = '1',
    'fields.x.end' = '{BIG}');
"""
UNBOUNDED = """
CREATE TABLE u (x BIGINT, k INT) WITH ('connector' = 'datagen', 'rows-per-second' = '1000',
    'fields.k.min' = '1', 'fields.k.max' = '3');
"""


def connect(runtime: str = "deterministic", parallelism: int = 1, batch: int = 1024):
    s = streamsql.connect(
        settings={
            "execution.runtime": runtime,
            "parallelism.default": str(parallelism),
            "execution.batch-size": str(batch),
        }
    )
    s.execute(BOUNDED + BIG_TABLE + UNBOUNDED)
    return s


def within(seconds: float, fn):
    """``fn()``'s result, failing (instead of hanging) when it takes longer."""
    out: dict[str, object] = {}
    worker = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    return out["value"]


# -- append-only input --------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 1024])
@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bounded_append_only(runtime, parallelism, batch):
    s = connect(runtime, parallelism, batch)
    table = within(30, lambda: s.query("SELECT x, name FROM t WHERE x % 2 = 0 LIMIT 7"))
    xs = table.column("x").to_pylist()
    assert len(xs) == len(set(xs)) == 7
    assert all(x % 2 == 0 and 1 <= x <= TOTAL for x in xs)
    if parallelism == 1 and runtime == "deterministic":
        assert xs == [2, 4, 6, 8, 10, 12, 14]  # the first to arrive
    assert s.last_result.summary().startswith("job finished")
    # The source stops reading: far fewer rows than the table has.
    assert within(30, lambda: s.query("SELECT x FROM big WHERE x % 2 = 0 LIMIT 7")).num_rows == 7
    assert s.last_result.rows_read < BIG // 10


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_offset_and_fetch(runtime):
    s = connect(runtime, batch=3)
    q = s.query
    assert q("SELECT x FROM t LIMIT 3 OFFSET 4").column("x").to_pylist() == [5, 6, 7]
    fetch = "SELECT x FROM t OFFSET 2 ROWS FETCH FIRST 2 ROWS ONLY"
    assert q(fetch).column("x").to_pylist() == [3, 4]
    assert q("SELECT x FROM t FETCH FIRST ROW ONLY").column("x").to_pylist() == [1]
    last = connect(runtime).query(f"SELECT x FROM t OFFSET {TOTAL - 2}")
    assert last.column("x").to_pylist() == [TOTAL - 1, TOTAL]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unbounded_source_with_limit_returns_and_ends(runtime):
    s = connect(runtime, parallelism=2)
    began = time.monotonic()
    table = within(10, lambda: s.query("SELECT x, k FROM u LIMIT 5"))
    assert table.num_rows == 5
    assert time.monotonic() - began < 5
    assert s.last_result.summary().startswith("job finished")

    handle = s.sql("SELECT * FROM u LIMIT 4")
    batches = within(10, lambda: list(handle.stream()))
    assert sum(b.num_rows for b in batches) == 4
    assert handle.result is not None and handle.result.rows_written == 4


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_limit_zero_ends_at_once(runtime):
    s = connect(runtime)
    assert within(10, lambda: s.query("SELECT * FROM u LIMIT 0")).num_rows == 0
    assert within(10, lambda: s.query("SELECT * FROM t WHERE x < 0 LIMIT 0")).num_rows == 0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_downstream_of_a_limit_closes_normally(runtime):
    """An aggregate over the limited rows of an unbounded source gives its final result."""
    s = connect(runtime, parallelism=2)
    rows = within(10, lambda: s.query("SELECT COUNT(*) AS n FROM (SELECT * FROM u LIMIT 50)"))
    assert rows.to_pylist() == [{"n": 50}]
    # A filter above the limit is not pushed below it.
    kept = s.query("SELECT x FROM (SELECT x FROM t LIMIT 10) WHERE x > 6")
    xs = kept.column("x").to_pylist()
    assert xs == [7, 8, 9, 10] if runtime == "deterministic" else all(x > 6 for x in xs)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_insert_with_limit_ends_after_n_rows(runtime):
    s = connect(runtime, parallelism=2)
    name = f"limit-{uuid.uuid4().hex}"
    s.execute(
        f"CREATE TABLE out (x BIGINT, k INT) WITH ('connector' = 'memory', 'name' = '{name}')"
    )
    result = within(10, lambda: s.execute("INSERT INTO out SELECT x, k FROM u LIMIT 7"))
    assert result.rows_written == 7
    assert stream(name).table().num_rows == 7
    assert result.job is not None and result.job.summary().startswith("job finished")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_limit_job_with_checkpoints_ends_normally(runtime, tmp_path):
    """Sources that end early still close with their positions; the final checkpoint
    records them and the sink commits its rows.
    """
    settings = {
        "execution.runtime": runtime,
        "parallelism.default": "2",
        "execution.batch-size": "8",
        "execution.checkpointing.interval": "10 rows",
    }
    s = streamsql.connect(tmp_path / "state", settings=settings)
    s.execute(UNBOUNDED)
    out = tmp_path / "out"
    s.execute(
        f"CREATE TABLE o (x BIGINT) WITH ('connector'='filesystem', 'path'='{out}', 'format'='csv')"
    )
    result = within(20, lambda: s.execute("INSERT INTO o SELECT x FROM u LIMIT 30"))
    assert result.job is not None and result.job.checkpoints is not None
    assert result.job.checkpoints.completed >= 1
    lines = [
        line for f in out.iterdir() if not f.name.startswith(".") for line in f.read_text().split()
    ]
    assert len(lines) == 30
    s.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_source_read_by_another_branch_goes_on(runtime):
    """One job, two INSERTs from one (shared) source: the LIMIT ends its branch only, and
    what the source still sends to it is taken and dropped (many small batches: more than
    a channel holds).
    """
    s = connect(runtime, batch=16)
    names = [f"limit-{uuid.uuid4().hex}" for _ in range(2)]
    for table, name in zip(("few", "all_rows"), names, strict=True):
        s.execute(f"CREATE TABLE {table} (x BIGINT) WITH ('connector'='memory', 'name'='{name}')")
    script = (
        "EXECUTE STATEMENT SET BEGIN INSERT INTO few SELECT x FROM t LIMIT 3; "
        "INSERT INTO all_rows SELECT x FROM t; END"
    )
    within(30, lambda: s.execute(script))
    assert stream(names[0]).table().num_rows == 3
    assert stream(names[1]).table().num_rows == TOTAL


# -- updating input -----------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bounded_group_by_limit_limits_the_final_result(runtime, parallelism):
    s = connect(runtime, parallelism, batch=512)
    group = "SELECT x % 10 AS k, COUNT(*) AS n FROM t GROUP BY x % 10"
    full = {r["k"]: r["n"] for r in s.query(group).to_pylist()}
    limited = s.query(group + " LIMIT 4")
    assert OP not in limited.column_names and limited.num_rows == 4
    assert all(full[r["k"]] == r["n"] for r in limited.to_pylist())  # final rows only
    assert s.query(group + " LIMIT 4 OFFSET 8").num_rows == 2
    assert s.query(group + " LIMIT 20").num_rows == 10


def test_bounded_group_by_limit_into_an_append_only_sink():
    s = connect()
    name = f"limit-{uuid.uuid4().hex}"
    s.execute(f"CREATE TABLE out (k BIGINT, n BIGINT) WITH ('connector'='memory', 'name'='{name}')")
    s.execute("INSERT INTO out SELECT x % 10, COUNT(*) FROM t GROUP BY x % 10 LIMIT 3")
    written = stream(name).table()
    assert written.num_rows == 3 and OP not in written.column_names
    assert written.column("n").to_pylist() == [TOTAL // 10] * 3


def test_unbounded_updating_limit_is_refused():
    s = connect()
    with pytest.raises(PlanError) as info:
        s.sql("SELECT k, COUNT(*) AS n FROM u GROUP BY k LIMIT 3")
    err = info.value
    assert "LIMIT needs the final result" in err.message and "unbounded" in err.message
    assert "ROW_NUMBER() OVER" in (err.hint or "") and "TUMBLE" in (err.hint or "")
    assert err.span is not None and err.span.column == 49  # at LIMIT's count


# -- what is refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM t LIMIT -1", "LIMIT takes a number of rows, zero or more, not -1"),
        ("SELECT * FROM t LIMIT 1.5", "not 1.5"),
        ("SELECT * FROM t LIMIT 'a'", "not 'a'"),
        ("SELECT * FROM t LIMIT x", "not x"),
        ("SELECT * FROM t LIMIT 3 OFFSET -2", "OFFSET takes a number of rows"),
        ("SELECT * FROM t FETCH FIRST 3 ROWS WITH TIES", "WITH TIES are not supported"),
    ],
)
def test_bad_counts_are_refused(sql, message):
    with pytest.raises(PlanError, match=message):
        connect().query(sql)


def test_order_by_with_limit_points_at_top_n():
    with pytest.raises(PlanError, match="ORDER BY is not supported") as info:
        connect().query("SELECT * FROM t ORDER BY x LIMIT 3")
    assert "ROW_NUMBER() OVER (ORDER BY" in (info.value.hint or "")
    with pytest.raises(PlanError, match="ORDER BY is not supported"):
        connect().query("SELECT x FROM t UNION ALL SELECT x FROM t ORDER BY x")


def test_limit_of_a_union():
    assert connect().query("SELECT x FROM t UNION ALL SELECT x FROM t LIMIT 3").num_rows == 3


# -- EXPLAIN ------------------------------------------------------------------------------


def test_explain_shows_the_limit_behind_a_singleton_exchange():
    text = connect(parallelism=2).explain("SELECT x FROM t WHERE x > 1 LIMIT 5 OFFSET 1")
    logical, physical = text.split("== Physical Plan ==")
    assert "+- Limit(offset=[1], fetch=[5])" in logical
    assert "Exchange(distribution=[singleton])" in logical
    assert "Limit -> Collect  [parallelism=1]" in physical
    assert "  <- singleton from Task" in physical
    final = connect().explain("SELECT x % 2, COUNT(*) FROM t GROUP BY x % 2 LIMIT 1")
    assert "Limit(offset=[0], fetch=[1], emit=[final rows at end of input])" in final


# -- the operator -------------------------------------------------------------------------


def _operator(fetch: int | None, offset: int = 0, updating: bool = False) -> LimitOperator:
    return LimitOperator(Limit(_source(updating), fetch, offset))


def _source(updating: bool):
    s = connect()
    scan = s.sql("SELECT x FROM t").planned.bound[0].input
    if not updating:
        return scan
    return s.sql("SELECT x, COUNT(*) AS n FROM t GROUP BY x").planned.bound[0].input


def test_operator_slices_batches_and_then_is_done():
    op = _operator(fetch=4, offset=3)
    batch = pa.record_batch({"x": pa.array(range(5), pa.int64())})
    assert [b.column(0).to_pylist() for b in op.process_batch(batch, 0)] == [[3, 4]]
    assert not op.done
    assert [b.column(0).to_pylist() for b in op.process_batch(batch, 0)] == [[0, 1]]
    assert op.done
    assert op.process_batch(batch, 0) == []


def test_operator_restores_its_count():
    op = _operator(fetch=3)
    op.process_batch(pa.record_batch({"x": pa.array([1, 2], pa.int64())}), 0)
    again = _operator(fetch=3)
    again.restore(op.snapshot(), [])
    out = again.process_batch(pa.record_batch({"x": pa.array([3, 4], pa.int64())}), 0)
    assert [b.column(0).to_pylist() for b in out] == [[3]] and again.done


def test_final_mode_folds_changes_and_emits_at_the_end(monkeypatch):
    monkeypatch.setattr(limit_ops, "FOLD_ROWS", 2)
    op = _operator(fetch=2, updating=True)
    ops = pa.array([0, 0, 1, 2, 0, 3], pa.int8())
    changes = pa.record_batch(
        {
            "x": pa.array([1, 2, 1, 1, 3, 2], pa.int64()),
            "n": pa.array([1, 1, 1, 2, 1, 1], pa.int64()),
            OP: ops,
        }
    )
    for i in range(changes.num_rows):  # one change per batch: folded many times
        assert op.process_batch(changes.slice(i, 1), 0) == []
        assert not op.done
    assert op.describe_state()["rows"] <= 4
    restored = _operator(fetch=2, updating=True)
    restored.restore(op.snapshot(), [])
    for o in (op, restored):
        rows = pa.Table.from_batches(o.close()).to_pylist()
        assert rows == [{"x": 1, "n": 2}, {"x": 3, "n": 1}]


def test_plan_node_refuses_an_unbounded_update():
    s = connect()
    updating = s.sql("SELECT x, COUNT(*) AS n FROM t GROUP BY x").planned.bound[0].input
    assert Limit(updating, 3).bounded and Limit(updating, 3).mode.kind == "append"
    scan = Scan(s.catalog.table("u"), ("x", "k"))
    assert not scan.bounded
    assert Limit(scan, 3).bounded and not Limit(scan, None, 3).bounded
