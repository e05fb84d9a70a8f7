import pyarrow as pa
import pytest

from streamsql.optimizer import optimize
from streamsql.optimizer.context import OptimizerContext
from streamsql.optimizer.split_window_aggregates import split_window_aggregates
from streamsql.physical.planner import build_job_graph
from streamsql.plan.binder import Binder
from streamsql.plan.local_window_agg import LocalWindowAggregate
from streamsql.plan.nodes import Exchange, WindowAggregate, walk

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
HOP = "TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))"
CUMULATE = "TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND))"
SESSION = "TABLE(SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts), INTERVAL '5' SECOND))"
KEYED = (
    f"SELECT window_start, auction, COUNT(*) AS n, MAX(price) AS top FROM {TUMBLE} "
    "GROUP BY window_start, window_end, auction"
)


def _aggs(roots) -> tuple[list[WindowAggregate], list[LocalWindowAggregate]]:
    nodes = walk(roots)
    return (
        [n for n in nodes if isinstance(n, WindowAggregate)],
        [n for n in nodes if isinstance(n, LocalWindowAggregate)],
    )


def _split(planner, sql: str, parallelism: int = 2, strategy: str = "AUTO"):
    ctx = OptimizerContext(parallelism=parallelism, agg_phase=strategy)
    return optimize(planner.bind(sql), ctx).roots


def _planned(planner, sql: str, **settings: str):
    """Plan ``sql`` as a session with these settings does (emit settings, late sink)."""
    s = planner.session
    s.execute("SET 'parallelism.default' = '2'")
    for key, value in settings.items():
        s.execute(f"SET '{key}' = '{value}'")
    return s.plan((Binder(s.catalog, s.settings).query(_parse(sql)),)).roots


def _parse(sql: str):
    from streamsql.parser import parse_statement

    return parse_statement(sql)


def test_keyed_aggregate_splits_around_the_hash_exchange(planner):
    roots = _split(planner, KEYED)
    (agg,), (local,) = _aggs(roots)
    assert agg.phase == "global" and agg.name == "GlobalWindowAggregate"
    assert isinstance(agg.input, Exchange) and agg.input.input is local
    assert agg.input.distribution.describe() == "hash[auction]"
    assert local.parallelism == local.input.parallelism == 1  # datagen: one source instance
    assert agg.parallelism == 2
    assert local.schema.names == ["auction", "count$0", "max$1", "$rows", "$slice_end"]
    assert agg.schema == next(iter(_aggs(_split(planner, KEYED, strategy="ONE_PHASE"))[0])).schema


def test_local_phase_runs_in_the_source_task(planner):
    graph = build_job_graph(_split(planner, KEYED))
    source, merge = graph.tasks[0], graph.tasks[1]
    assert [n.name for n in source.nodes] == ["Scan", "LocalWindowAggregate"]
    assert merge.head.name == "GlobalWindowAggregate"
    assert [t.id for t in graph.tasks if t.state_tables()] == [merge.id]


def test_keyless_aggregate_is_gathered_after_the_local_phase(planner):
    sql = (
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} WHERE price > 1 "
        "GROUP BY window_start, window_end"
    )
    roots = _split(planner, sql, parallelism=3)
    (agg,), (local,) = _aggs(roots)
    assert agg.parallelism == 1 and local.parallelism == 3
    assert agg.input.distribution.describe() == "singleton"


def test_partial_columns_and_their_types(planner):
    sql = (
        f"SELECT window_start, channel, AVG(price) AS a, MIN(url) AS u, "
        f"SUM(price) FILTER (WHERE bidder > 3) AS s, COUNT(url) AS c FROM {TUMBLE} "
        "GROUP BY window_start, window_end, channel"
    )
    (_,), (local,) = _aggs(_split(planner, sql))
    assert dict(zip(local.schema.names, local.schema.types, strict=True)) == {
        "channel": pa.string(),
        "sum$0": pa.int64(),
        "count$0": pa.int64(),
        "min$1": pa.string(),
        "sum$2": pa.int64(),
        "count$3": pa.int64(),
        "$rows": pa.int64(),
        "$slice_end": pa.timestamp("ms"),
    }
    assert "FILTER (WHERE" in local.describe()


def test_hop_assigned_by_the_aggregate_sends_panes(planner):
    sql = (
        f"SELECT window_start, auction, SUM(price) AS s FROM {HOP} "
        "GROUP BY window_start, window_end, auction"
    )
    (agg,), (local,) = _aggs(_split(planner, sql))
    assert local.assigns and local.panes and "slice=[pane]" in local.describe()
    assert agg.assigns


def test_windows_given_by_the_tvf_split_even_for_cumulate(planner):
    sql = (
        f"SELECT window_start, auction, COUNT(*) AS n FROM {CUMULATE} "
        "WHERE ts >= window_start GROUP BY window_start, window_end, auction"
    )
    (_,), (local,) = _aggs(_split(planner, sql))
    assert not local.assigns and "slice=[window]" in local.describe()


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(
            f"SELECT window_start, auction, COUNT(DISTINCT bidder) AS b FROM {TUMBLE} "
            "GROUP BY window_start, window_end, auction",
            id="distinct",
        ),
        pytest.param(
            f"SELECT window_start, auction, COUNT(*) AS n FROM {SESSION} "
            "GROUP BY window_start, window_end, auction",
            id="session",
        ),
        pytest.param(
            f"SELECT window_start, auction, COUNT(*) AS n FROM {CUMULATE} "
            "GROUP BY window_start, window_end, auction",
            id="cumulate-assigned",
        ),
    ],
)
def test_aggregates_that_cannot_merge_partials_stay_one_phase(planner, sql):
    aggs, locals_ = _aggs(_split(planner, sql, strategy="TWO_PHASE"))
    assert not locals_ and not aggs[0].phase


def test_parallelism_one_stays_one_phase(planner):
    aggs, locals_ = _aggs(_split(planner, KEYED, parallelism=1))
    assert not locals_ and not aggs[0].phase


def test_one_phase_setting(planner):
    aggs, locals_ = _aggs(_split(planner, KEYED, strategy="ONE_PHASE"))
    assert not locals_ and not aggs[0].phase


def test_two_phase_setting_splits_at_parallelism_one(planner):
    roots = _split(planner, KEYED, parallelism=1, strategy="TWO_PHASE")
    (agg,), (local,) = _aggs(roots)
    assert agg.input is local  # no exchange: both phases chained in one task
    assert len(build_job_graph(roots).tasks) == 1


def test_rule_can_be_switched_off(planner):
    ctx = OptimizerContext(parallelism=2, disabled=frozenset({"split_window_aggregates"}))
    _, locals_ = _aggs(optimize(planner.bind(KEYED), ctx).roots)
    assert not locals_


def test_rule_alone_leaves_a_split_aggregate_alone(planner):
    roots = _split(planner, KEYED)
    ctx = OptimizerContext(parallelism=2, agg_phase="TWO_PHASE")
    assert split_window_aggregates(roots, ctx) == roots


def test_session_settings_choose_the_strategy(planner):
    _, locals_ = _aggs(_planned(planner, KEYED))
    assert locals_
    one = _planned(planner, KEYED, **{"table.optimizer.agg-phase-strategy": "one_phase"})
    assert not _aggs(one)[1]


def test_late_rows_sink_stays_one_phase(planner):
    planner.session.execute(
        "CREATE TABLE late_bids (auction BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'blackhole')"
    )
    roots = _planned(planner, KEYED, **{"table.exec.late-rows.sink": "late_bids"})
    (agg,), locals_ = _aggs(roots)
    assert agg.late_sink is not None and not locals_ and not agg.phase


@pytest.mark.parametrize(
    "setting",
    [
        {"table.exec.emit.allow-lateness": "5 s"},
        {"table.exec.emit.early-fire.enabled": "true", "table.exec.emit.early-fire.delay": "1 s"},
    ],
    ids=["allow-lateness", "early-fire"],
)
def test_updating_emits_stay_one_phase(planner, setting):
    (agg,), locals_ = _aggs(_planned(planner, KEYED, **setting))
    assert agg.emit.updating and not locals_ and not agg.phase
