"""Allowed lateness and early firing of window aggregates, end to end: updating results in a
memory sink and a keyed duckdb table, equal to DuckDB's batch answer over the rows within
the lateness; refusals where updates cannot go; EXPLAIN; bad settings.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pyarrow as pa
import pytest

import streamsql
from streamsql import duck
from streamsql.changelog import final_table
from streamsql.connectors.memory import stream
from streamsql.errors import ConfigError, PlanError
from streamsql.plan.changelog import OP, UPDATE_BEFORE
from tests.changelog_check import check_changelog

LATENESS = {"table.exec.emit.allow-lateness": "10 s"}
TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
PER_WINDOW = (
    f"SELECT window_start, window_end, k, COUNT(*) AS n, SUM(v) AS s FROM {TUMBLE} "
    "GROUP BY window_start, window_end, k"
)
BATCH_PER_WINDOW = (
    "SELECT time_bucket(INTERVAL 10 SECOND, ts) AS window_start, "
    "time_bucket(INTERVAL 10 SECOND, ts) + INTERVAL 10 SECOND AS window_end, k, COUNT(*), "
    "SUM(v) FROM rows GROUP BY ALL"
)
_names = itertools.count()

# (pushes) of (key, value, time in ms); the watermark is the largest time so far.
PUSHES = [
    [("a", 1, 1_000), ("b", 2, 2_000), ("a", 3, 12_000)],  # [0, 10 s) fires
    [("a", 10, 3_000)],  # late, within 10 s of lateness: updates [0, 10 s)
    [("c", 1, 25_000)],  # [0, 10 s) is past its lateness, [10 s, 20 s) fires
    [("a", 100, 4_000)],  # too late: dropped
    [("b", 5, 15_000), (None, 7, 16_000), ("a", 4, 17_000)],  # late, within [10 s, 20 s)
]
DROPPED = [("a", 100, 4_000)]


@pytest.fixture
def name() -> Iterator[str]:
    unique = f"emit-{next(_names)}"
    yield unique
    stream(unique).reset()
    stream(f"{unique}-out").reset()


def connect(name: str, **settings: str) -> streamsql.Session:
    session = streamsql.connect(settings=settings)
    session.execute(
        f"CREATE TABLE bids (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) "
        f"WITH ('connector' = 'memory', 'name' = '{name}')"
    )
    return session


def push_all(name: str, pushes=PUSHES) -> None:
    source = stream(name)
    for push in pushes:
        source.push([{"k": k, "v": v, "ts": t} for k, v, t in push])
    source.end()


def batch_answer(rows: list[tuple]) -> list[dict]:
    con = duck.connect()
    table = pa.table(
        {
            "k": [k for k, _, _ in rows],
            "v": pa.array([v for _, v, _ in rows], pa.int64()),
            "ts": pa.array([t for *_, t in rows], pa.int64()).cast(pa.timestamp("ms")),
        }
    )
    out = duck.query_arrow(con, BATCH_PER_WINDOW, rows=table)
    return _sorted(out.rename_columns(["window_start", "window_end", "k", "n", "s"]))


def _sorted(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (r["window_start"], r["k"] or ""))


def test_late_rows_within_the_lateness_update_the_windows_in_a_memory_sink(name):
    session = connect(name, **LATENESS)
    session.execute(
        "CREATE TABLE out (ws TIMESTAMP(3), we TIMESTAMP(3), k STRING, n BIGINT, s BIGINT) "
        f"WITH ('connector' = 'memory', 'name' = '{name}-out')"
    )
    push_all(name)
    result = session.execute(f"INSERT INTO out {PER_WINDOW}").job
    assert result is not None and result.late_rows_dropped == 1
    changes = stream(f"{name}-out").table()
    ops = changes.column(OP).to_pylist()
    assert ops.count(UPDATE_BEFORE) == 2  # a in [0, 10 s) and in [10 s, 20 s)
    check_changelog(changes.to_batches(), ("ws", "we", "k"))
    final = final_table(changes).rename_columns(["window_start", "window_end", "k", "n", "s"])
    within = [r for push in PUSHES for r in push if r not in DROPPED]
    assert _sorted(final) == batch_answer(within)


def test_a_keyed_duckdb_table_holds_the_updated_windows(name, tmp_path):
    session = connect(name, **LATENESS)
    db = tmp_path / "windows.duckdb"
    session.execute(
        "CREATE TABLE results (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k STRING, "
        "n BIGINT, s BIGINT, PRIMARY KEY (window_start, window_end, k) NOT ENFORCED) "
        f"WITH ('connector' = 'duckdb', 'path' = '{db}', 'table' = 'per_window')"
    )
    push_all(name, PUSHES[:3])  # no NULL key: it cannot be part of a primary key
    session.execute(f"INSERT INTO results {PER_WINDOW}")
    con = duck.connect(str(db))
    got = duck.query_arrow(con, "SELECT * FROM per_window")
    con.close()
    assert _sorted(got) == batch_answer([r for push in PUSHES[:3] for r in push])


def test_query_returns_the_final_rows(name):
    session = connect(name, **LATENESS)
    push_all(name)
    within = [r for push in PUSHES for r in push if r not in DROPPED]
    assert _sorted(session.query(PER_WINDOW)) == batch_answer(within)
    handle = session.sql(PER_WINDOW)
    assert handle.updating
    assert _sorted(handle.to_arrow()) == batch_answer(within)


def test_without_the_settings_late_rows_are_dropped_and_results_append_only(name):
    session = connect(name)
    push_all(name)
    handle = session.sql(PER_WINDOW)
    assert not handle.updating
    on_time = [PUSHES[0][0], PUSHES[0][1], PUSHES[0][2], PUSHES[2][0]]
    assert _sorted(handle.to_arrow()) == batch_answer(on_time)
    assert handle.result is not None and handle.result.late_rows_dropped == 5


def test_early_firing_emits_partial_results_then_the_final_ones(name):
    session = connect(
        name,
        **{"table.exec.emit.early-fire.enabled": "true", "table.exec.emit.early-fire.delay": "1 s"},
    )
    ticks = itertools.count()
    session.clock = lambda: next(ticks) * 1_000  # one delay passes at every look at the clock
    session.execute(
        "CREATE TABLE out (ws TIMESTAMP(3), k STRING, n BIGINT, s BIGINT) "
        f"WITH ('connector' = 'memory', 'name' = '{name}-out')"
    )
    push_all(name, [[("a", 1, 1_000)], [("a", 2, 2_000)], [("b", 1, 3_000)], [("a", 1, 11_000)]])
    session.execute(
        f"INSERT INTO out SELECT window_start, k, COUNT(*), SUM(v) FROM {TUMBLE} "
        "GROUP BY window_start, window_end, k"
    )
    changes = stream(f"{name}-out").table()
    first = changes.slice(0, 1).to_pylist()[0]
    assert (first["k"], first["n"], first[OP]) == ("a", 1, 0)  # early: before the window closed
    assert UPDATE_BEFORE in changes.column(OP).to_pylist()
    check_changelog(changes.to_batches(), ("ws", "k"))
    final = sorted(
        (r["ws"].second, r["k"], r["n"], r["s"]) for r in final_table(changes).to_pylist()
    )
    assert final == [(0, "a", 2, 3), (0, "b", 1, 1), (10, "a", 1, 1)]


# -- where updates cannot go ----------------------------------------------------------------


def test_an_append_only_sink_is_refused_naming_the_setting(name, tmp_path):
    session = connect(name, **LATENESS)
    session.execute(
        "CREATE TABLE files (ws TIMESTAMP(3), k STRING, n BIGINT) WITH ("
        f"'connector' = 'filesystem', 'path' = '{tmp_path}', 'format' = 'csv')"
    )
    with pytest.raises(PlanError) as caught:
        session.execute(
            f"INSERT INTO files SELECT window_start, k, COUNT(*) FROM {TUMBLE} "
            "GROUP BY window_start, window_end, k"
        )
    text = str(caught.value)
    assert "is updating because 'table.exec.emit.allow-lateness' is set" in text
    assert "connector 'filesystem' can only append rows" in text
    assert "write to a sink that accepts updates (e.g. 'connector' = 'duckdb' with a " in text
    assert "PRIMARY KEY, or 'print')" in text


def test_early_firing_is_named_when_it_makes_the_result_updating(name, tmp_path):
    session = connect(
        name,
        **{"table.exec.emit.early-fire.enabled": "true", "table.exec.emit.early-fire.delay": "5 s"},
    )
    session.execute(
        "CREATE TABLE files (ws TIMESTAMP(3), n BIGINT) WITH ("
        f"'connector' = 'filesystem', 'path' = '{tmp_path}', 'format' = 'csv')"
    )
    with pytest.raises(PlanError, match=r"'table\.exec\.emit\.early-fire\.enabled' is true"):
        session.execute(
            f"INSERT INTO files SELECT window_start, COUNT(*) FROM {TUMBLE} "
            "GROUP BY window_start, window_end"
        )


def test_consumers_that_need_final_windows_refuse_updating_ones(name):
    session = connect(name, **LATENESS)
    ranked = (
        "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end "
        f"ORDER BY n DESC) AS rn FROM ({PER_WINDOW})) WHERE rn <= 2"
    )
    with pytest.raises(PlanError, match="a Top-N per window needs each window's final rows"):
        session.explain(ranked)
    session.execute(f"CREATE VIEW per_window AS {PER_WINDOW}")
    with pytest.raises(PlanError, match=r"updating because 'table\.exec\.emit\.allow-lateness'"):
        session.explain(
            "SELECT window_start, window_end, SUM(n) FROM per_window "
            "GROUP BY window_start, window_end"
        )
    with pytest.raises(PlanError, match="EMIT ON WINDOW CLOSE: this query updates"):
        session.explain(f"{PER_WINDOW} EMIT ON WINDOW CLOSE")


# -- EXPLAIN and settings ---------------------------------------------------------------------


def test_explain_shows_the_emit_strategy_the_changelog_mode_and_the_emitted_rows(name):
    session = connect(
        name,
        **LATENESS,
        **{"table.exec.emit.early-fire.enabled": "true", "table.exec.emit.early-fire.delay": "5 s"},
    )
    text = session.explain(PER_WINDOW)
    assert (
        "WindowAggregate(window=[TUMBLE(time_col=[ts], size=[10 s])], groupBy=[k], "
        "select=[COUNT(*) AS $agg0, SUM(v) AS $agg1], "
        "emit=[on window close, early every 5 s, allow lateness 10 s], "
        "changelogMode=[I,UB,UA,D], upsertKey=[window_start, window_end, k])"
    ) in text
    assert "state: DuckDB table t1_n1_window_agg_emitted_i{0}" in text
    plain = connect(f"{name}-plain").explain(PER_WINDOW)
    assert "emit=[on window close])" in plain and "changelogMode" not in plain


def test_sessions_accept_lateness_but_refuse_early_firing(name):
    sessions = (
        "SELECT window_start, window_end, k, COUNT(*) AS n FROM TABLE(SESSION(TABLE bids "
        "PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k"
    )
    session = connect(name, **LATENESS)
    assert "emit=[on window close, allow lateness 10 s]" in session.explain(sessions)
    session.execute("SET 'table.exec.emit.early-fire.enabled' = 'true'")
    session.execute("SET 'table.exec.emit.early-fire.delay' = '1 s'")
    with pytest.raises(PlanError) as caught:
        session.explain(sessions)
    assert "'table.exec.emit.early-fire.enabled' is not supported for SESSION windows" in str(
        caught.value
    )


def test_late_rows_update_sessions_end_to_end(name):
    session = connect(name, **LATENESS)
    push_all(
        name,
        [
            [("a", 1, 0), ("a", 2, 2_500)],
            [("a", 1, 9_000)],  # the watermark closes [0, 1 s) and [2.5 s, 3.5 s)
            [("a", 10, 1_000)],  # late: grows [0, 1 s) to [0, 2 s)
            [("a", 100, 1_600)],  # late: bridges it with [2.5 s, 3.5 s)
        ],
    )
    rows = session.query(
        "SELECT window_start, window_end, k, COUNT(*) AS n, SUM(v) AS s FROM TABLE(SESSION("
        "TABLE bids PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND)) "
        "GROUP BY window_start, window_end, k"
    )
    got = sorted(
        (r["window_start"].second, r["window_end"].second, r["n"], r["s"]) for r in rows.to_pylist()
    )
    assert got == [(0, 3, 4, 113), (9, 10, 1, 1)]
    assert rows.num_rows == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("table.exec.emit.allow-lateness", "soon", "'soon' is not a duration"),
        ("table.exec.emit.allow-lateness", "-1 s", "is not a duration"),
        ("table.exec.emit.early-fire.enabled", "yes", "'yes' is not 'true' or 'false'"),
        ("table.exec.emit.early-fire.delay", "1 fortnight", "is not a duration"),
    ],
)
def test_bad_values_are_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        streamsql.connect(settings={key: value})


def test_early_firing_needs_a_positive_delay(name):
    session = connect(name, **{"table.exec.emit.early-fire.enabled": "true"})
    with pytest.raises(ConfigError) as caught:
        session.explain(PER_WINDOW)
    assert caught.value.option == "table.exec.emit.early-fire.delay"
    assert "early firing needs a positive delay" in str(caught.value)
    session.execute("SET 'table.exec.emit.early-fire.delay' = '0 ms'")
    with pytest.raises(ConfigError, match="positive delay"):
        session.explain(PER_WINDOW)
