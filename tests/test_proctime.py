"""Processing time: ``pt AS PROCTIME()`` columns and windows on them.

The clock is injected (``Session.clock``), and the driver is stepped one round at a time, so
each round's rows are stamped with a time the test chose.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamsql
from streamsql.connectors.memory import stream
from streamsql.errors import BindError, StreamSQLError
from streamsql.runtime.operators import ResultBuffer

T0 = 1_700_000_000_000  # the fake clock's start, a whole minute in epoch milliseconds
S1 = "INTERVAL '1' SECOND"
S2 = "INTERVAL '2' SECOND"
_names = itertools.count()


class Clock:
    """A fake processing-time clock: epoch milliseconds that move only when told."""

    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def at(seconds: float) -> dt.datetime:
    """The window bound ``seconds`` after T0, as a window column reads back."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=T0 + seconds * 1000)


class Run:
    """A query run one driver round per ``step``, on the session's (fake) clock."""

    def __init__(self, session: streamsql.Session, sql: str) -> None:
        # Rounds are the deterministic driver's: the threaded executor has none.
        session.settings.set("execution.runtime", "deterministic")
        handle = session.sql(sql)
        self.results = ResultBuffer(handle.schema)
        self.driver = session.driver(handle.planned, self.results)
        self.steps = self.driver.steps()

    def step(self) -> list[dict]:
        """One round; the rows that came out of it."""
        next(self.steps)
        return self._drain()

    def finish(self) -> list[dict]:
        rows = [r for _ in self.steps for r in self._drain()]
        return rows + self._drain()

    def _drain(self) -> list[dict]:
        return [row for batch in self.results.drain() for row in batch.to_pylist()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def name() -> Iterator[str]:
    unique = f"proctime-{next(_names)}"
    yield unique
    stream(unique).reset()


def _session(clock: Clock, ddl: str, **settings: str) -> streamsql.Session:
    session = streamsql.connect(settings=settings or None)
    session.clock = clock
    session.execute(ddl)
    return session


def _memory_table(name: str, parallelism: int = 1, watermark: bool = False) -> str:
    wm = ", WATERMARK FOR ts AS ts - INTERVAL '1' SECOND" if watermark else ""
    return (
        f"CREATE TABLE clicks (user_id BIGINT, ts TIMESTAMP(3), pt AS PROCTIME(){wm}) "
        f"WITH ('connector' = 'memory', 'name' = '{name}', "
        f"'scan.parallelism' = '{parallelism}')"
    )


def _counts(window: str, table: str = "clicks") -> str:
    return (
        f"SELECT window_start, window_end, COUNT(*) AS n FROM TABLE({window.format(t=table)}) "
        "GROUP BY window_start, window_end"
    )


TUMBLE_PT = "TUMBLE(TABLE {t}, DESCRIPTOR(pt), " + S2 + ")"

# -- DDL ------------------------------------------------------------------------------------


def test_the_proctime_column_is_the_tables_processing_time_attribute(clock, name):
    session = _session(clock, _memory_table(name, watermark=True))
    table = session.catalog.tables["clicks"]
    assert table.proctime_attribute == "pt"
    assert table.time_attribute == "ts"  # both kinds of time, as in Flink
    rows = {r["name"]: r for r in session.describe("clicks").to_pylist()}
    assert rows["pt"]["type"] == "TIMESTAMP_LTZ(3)"
    assert rows["pt"]["extras"] == "AS PROCTIME() *PROCTIME*"
    assert rows["ts"]["extras"].startswith("*ROWTIME*")


def test_a_computation_on_proctime_is_a_plain_column(clock, name):
    session = _session(
        clock,
        "CREATE TABLE t (x BIGINT, later AS PROCTIME() + INTERVAL '1' SECOND) "
        f"WITH ('connector' = 'memory', 'name' = '{name}')",
    )
    assert session.catalog.tables["t"].proctime_attribute is None


def test_plain_reads_stamp_the_injected_clock(clock, name):
    session = _session(clock, _memory_table(name))
    stream(name).push([{"user_id": 1, "ts": 0}])
    stream(name).end()
    table = session.query("SELECT user_id, pt FROM clicks")
    assert table.column("pt").to_pylist() == [dt.datetime.fromtimestamp(T0 / 1000, dt.timezone.utc)]


# -- EXPLAIN --------------------------------------------------------------------------------


def test_explain_shows_the_proctime_scan_and_its_watermark(clock, name):
    session = _session(clock, _memory_table(name, watermark=True))
    text = session.explain(_counts(TUMBLE_PT))
    assert "Scan(table=[clicks], fields=[pt], proctime=[pt])" in text
    assert "time_col=[pt]" in text
    assert "watermark: processing time: the clock, stamped into pt" in text
    assert "watermark=[ts" not in text  # the event-time watermark is not generated


def test_explain_of_an_event_time_window_on_the_same_table_is_unchanged(clock, name):
    session = _session(clock, _memory_table(name, watermark=True))
    text = session.explain(_counts("TUMBLE(TABLE {t}, DESCRIPTOR(ts), " + S2 + ")"))
    assert "Scan(table=[clicks], fields=[ts], watermark=[ts: ts - INTERVAL '1' SECOND])" in text
    assert "proctime=" not in text


def test_a_proctime_and_an_event_time_branch_read_the_table_apart(clock, name):
    session = _session(clock, _memory_table(name, watermark=True))
    session.execute(
        "CREATE TABLE a (s TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');"
        "CREATE TABLE b (s TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole')"
    )
    by_pt = "SELECT window_start, COUNT(*) FROM TABLE(" + TUMBLE_PT.format(t="clicks") + ")"
    by_ts = "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), "
    group = " GROUP BY window_start, window_end"
    script = (
        f"EXPLAIN EXECUTE STATEMENT SET BEGIN INSERT INTO a {by_pt}{group}; "
        f"INSERT INTO b {by_ts}{S2})){group}; END"
    )
    text = session.execute(script).outputs[0].message
    assert "proctime=[pt]" in text and "watermark=[ts: ts - INTERVAL '1' SECOND]" in text


# -- errors ---------------------------------------------------------------------------------


def _error(session: streamsql.Session, sql: str) -> StreamSQLError:
    with pytest.raises(StreamSQLError) as info:
        session.execute(sql)
    err = info.value
    assert err.span is not None and "^" in str(err)
    return err


def test_two_proctime_columns_are_refused(clock):
    session = streamsql.connect()
    err = _error(
        session,
        "CREATE TABLE t (x BIGINT, p1 AS PROCTIME(),\n  p2 AS PROCTIME()) "
        "WITH ('connector' = 'blackhole')",
    )
    assert isinstance(err, BindError)
    assert "two processing-time attributes, 'p1' and 'p2'" in err.message
    assert (err.span.line, err.span.column) == (2, 3)


def test_a_watermark_on_the_proctime_column_is_refused():
    err = _error(
        streamsql.connect(),
        "CREATE TABLE t (x BIGINT, pt AS PROCTIME(),\n"
        "  WATERMARK FOR pt AS pt - INTERVAL '1' SECOND) WITH ('connector' = 'blackhole')",
    )
    assert "'pt' is a processing-time attribute" in err.message
    assert err.span.line == 2 and "need no watermark" in (err.hint or "")


@pytest.mark.parametrize("expr", ["pt", "PROCTIME()", "PROCTIME() - INTERVAL '1' SECOND"])
def test_a_watermark_that_reads_the_clock_is_refused(expr):
    err = _error(
        streamsql.connect(),
        "CREATE TABLE t (ts TIMESTAMP(3), pt AS PROCTIME(),\n"
        f"  WATERMARK FOR ts AS {expr}) WITH ('connector' = 'blackhole')",
    )
    assert "the watermark expression reads processing time" in err.message
    assert err.span.line == 2


def test_a_plain_column_hint_names_both_kinds_of_time(clock, name):
    session = _session(
        clock,
        f"CREATE TABLE plain (x BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'memory', "
        f"'name' = '{name}')",
    )
    err = _error(session, _counts("TUMBLE(TABLE {t}, DESCRIPTOR(ts), " + S1 + ")", "plain"))
    assert "'ts' is not a time attribute" in err.message
    assert "WATERMARK FOR ts" in err.hint and "AS PROCTIME()" in err.hint


def test_a_plain_column_of_a_timed_table_hints_at_its_time_attributes(clock, name):
    session = _session(clock, _memory_table(name))  # pt only; ts has no watermark
    err = _error(session, _counts("TUMBLE(TABLE {t}, DESCRIPTOR(ts), " + S1 + ")"))
    assert err.hint == "the time attribute of this input is 'pt'"
    session = _session(clock, _memory_table(name, watermark=True).replace("clicks", "c2"))
    session.execute("CREATE VIEW v AS SELECT user_id, ts AS t2, pt FROM c2")
    err = _error(session, _counts("TUMBLE(TABLE {t}, DESCRIPTOR(user_id), " + S1 + ")", "v"))
    assert err.hint == "the time attribute of this input is 't2' or 'pt'"


@pytest.mark.parametrize(
    "view",
    [
        "SELECT user_id, PROCTIME() AS pt FROM clicks",  # not declared in CREATE TABLE
        "SELECT user_id, CAST(pt AS TIMESTAMP(3)) AS pt FROM clicks",  # computed upon
    ],
)
def test_proctime_that_is_not_the_tables_attribute_is_refused(clock, name, view):
    session = _session(clock, _memory_table(name))
    session.execute(f"CREATE VIEW v AS {view}")
    err = _error(session, _counts(TUMBLE_PT, "v"))
    assert "'pt' is not a time attribute" in err.message


def test_proctime_through_a_view_and_a_filter_keeps_its_meaning(clock, name):
    session = _session(clock, _memory_table(name))
    session.execute("CREATE VIEW v AS SELECT user_id, pt AS proc FROM clicks WHERE user_id > 0")
    window = "TUMBLE(TABLE {t}, DESCRIPTOR(proc), " + S2 + ")"
    assert "proctime=[pt]" in session.explain(_counts(window, "v"))
    stream(name).push([{"user_id": u, "ts": 0} for u in (0, 1, 2)])
    stream(name).end()
    assert session.query(_counts(window, "v")).column("n").to_pylist() == [2]


# -- bounded input ----------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Ten rows whose event time runs backwards by hours: useless as event time."""
    ts = pa.array([T0 - i * 3_600_000 for i in range(10)], pa.int64()).cast(pa.timestamp("ms"))
    users = pa.array(range(10), pa.int64())
    pq.write_table(pa.table({"user_id": users, "ts": ts}), tmp_path / "a.parquet")
    return tmp_path


def _file_table(path: Path) -> str:
    return (
        "CREATE TABLE clicks (user_id BIGINT, ts TIMESTAMP(3), pt AS PROCTIME(), "
        "WATERMARK FOR ts AS ts) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'parquet')"
    )


WINDOWS = {
    # rounds 0..3 read 3, 3, 3 and 1 rows at T0 + 0 s, 1 s, 2 s, 3 s
    "TUMBLE(TABLE {t}, DESCRIPTOR(pt), " + S2 + ")": [(0, 2, 6), (2, 4, 4)],
    "HOP(TABLE {t}, DESCRIPTOR(pt), " + S1 + ", " + S2 + ")": [
        (-1, 1, 3),
        (0, 2, 6),
        (1, 3, 6),
        (2, 4, 4),
        (3, 5, 1),
    ],
    "CUMULATE(TABLE {t}, DESCRIPTOR(pt), " + S1 + ", " + S2 + ")": [
        (0, 1, 3),
        (0, 2, 6),
        (2, 3, 3),
        (2, 4, 4),
    ],
}


@pytest.mark.parametrize("window", list(WINDOWS))
def test_bounded_rows_are_windowed_by_when_they_were_read(clock, files, window):
    session = _session(clock, _file_table(files), **{"execution.batch-size": "3"})
    run = Run(session, _counts(window))
    out = []
    for _ in range(4):
        out += run.step()
        clock.ms += 1000
    out += run.finish()  # the end of the input fires the rest
    got = sorted((r["window_start"], r["window_end"], r["n"]) for r in out)
    assert got == [(at(s), at(e), n) for s, e, n in WINDOWS[window]]
    assert run.driver.job.result().late_rows_dropped == 0  # ts runs backwards: unused


def test_bounded_run_with_the_wall_clock_counts_every_row(files):
    session = streamsql.connect()
    session.execute(_file_table(files))
    table = session.query(
        "SELECT SUM(n) AS total FROM (" + _counts(TUMBLE_PT.replace("2", "3600")) + ")"
    )
    assert table.column("total").to_pylist() == [10]
    assert session.last_result is not None and session.last_result.late_rows_dropped == 0


# -- unbounded input: windows close by the clock alone ----------------------------------------


@pytest.mark.parametrize("parallelism", [1, 2])
def test_windows_close_on_an_idle_stream_as_the_clock_moves(clock, name, parallelism):
    session = _session(clock, _memory_table(name, parallelism, watermark=True))
    s = stream(name)
    run = Run(session, _counts(TUMBLE_PT))
    s.push([{"user_id": 1, "ts": 0}, {"user_id": 2, "ts": 0}])  # push 0 -> instance 0
    s.push([{"user_id": 3, "ts": 0}])  # push 1 -> instance 1 when there are two
    clock.ms = T0 + 500
    assert run.step() == []
    clock.ms = T0 + 1999  # watermark T0 + 1998: [0 s, 2 s) is still open
    assert run.step() + run.step() == []
    clock.ms = T0 + 2000  # nothing new arrives, yet the window closes
    assert run.step() == [{"window_start": at(0), "window_end": at(2), "n": 3}]
    s.push([{"user_id": 4, "ts": 0}])
    clock.ms = T0 + 3000
    assert run.step() == []
    clock.ms = T0 + 60_000
    out = run.step() + run.step()
    assert out == [{"window_start": at(2), "window_end": at(4), "n": 1}]
    run.steps.close()
    result = run.driver.job.result()
    assert result.late_rows_dropped == 0
    assert not result.idle  # a processing-time source never goes idle


def test_session_windows_on_proctime(clock, name):
    session = _session(clock, _memory_table(name))
    s = stream(name)
    q = (
        "SELECT user_id, window_start, window_end, COUNT(*) AS n FROM TABLE(SESSION("
        f"TABLE clicks PARTITION BY user_id, DESCRIPTOR(pt), {S1})) "
        "GROUP BY user_id, window_start, window_end"
    )
    run = Run(session, q)
    s.push([{"user_id": 1, "ts": 0}, {"user_id": 2, "ts": 0}])
    assert run.step() == []
    clock.ms = T0 + 700
    s.push([{"user_id": 1, "ts": 0}])
    assert run.step() == []
    clock.ms = T0 + 1000  # user 2's session [0, 1 s) closes; user 1's runs to 1.7 s
    assert run.step() == [{"user_id": 2, "window_start": at(0), "window_end": at(1), "n": 1}]
    clock.ms = T0 + 1700
    assert run.step() == [{"user_id": 1, "window_start": at(0), "window_end": at(1.7), "n": 2}]
    run.steps.close()


def test_legacy_group_window_on_proctime(clock, name):
    session = _session(clock, _memory_table(name))
    stream(name).push([{"user_id": 1, "ts": 0}] * 3)
    stream(name).end()
    table = session.query(
        f"SELECT TUMBLE_START(pt, {S2}) AS ws, TUMBLE_ROWTIME(pt, {S2}) AS wt, COUNT(*) AS n "
        f"FROM clicks GROUP BY TUMBLE(pt, {S2})"
    )
    assert table.to_pylist() == [{"ws": at(0), "wt": at(1.999), "n": 3}]


def test_a_window_on_the_window_time_of_a_proctime_window(clock, name):
    session = _session(clock, _memory_table(name))
    session.execute(
        "CREATE VIEW per_second AS SELECT window_time AS wt, COUNT(*) AS n FROM "
        f"TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(pt), {S1})) GROUP BY window_start, "
        "window_end, window_time"
    )
    s = stream(name)
    run = Run(
        session,
        "SELECT window_start, SUM(n) AS n FROM TABLE(TUMBLE(TABLE per_second, "
        f"DESCRIPTOR(wt), {S2})) GROUP BY window_start, window_end",
    )
    for second in range(4):
        clock.ms = T0 + second * 1000
        s.push([{"user_id": 1, "ts": 0}] * (second + 1))
        assert run.step() == ([{"window_start": at(0), "n": 3}] if second == 2 else [])
    s.end()
    assert run.finish() == [{"window_start": at(2), "n": 7}]
