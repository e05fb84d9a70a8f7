from streamsql.optimizer import optimize
from streamsql.optimizer.context import OptimizerContext
from streamsql.optimizer.fuse_window_assignment import fuse_window_assignment
from streamsql.optimizer.prune_columns import prune_columns
from streamsql.optimizer.push_down_filters import push_down_filters
from streamsql.plan.nodes import WindowAggregate, WindowTVF, walk

HOP = "TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))"


def _prepared(planner, sql):
    roots = planner.bind(sql)
    roots = push_down_filters(roots, planner.ctx())
    return prune_columns(roots, planner.ctx())


def test_aggregate_assigns_windows_itself(planner):
    roots = _prepared(
        planner,
        f"SELECT window_start, auction, COUNT(*) AS n FROM {HOP} WHERE price > 1 "
        "GROUP BY window_start, window_end, auction",
    )
    after = fuse_window_assignment(roots, planner.ctx())
    assert not [n for n in walk(after) if isinstance(n, WindowTVF)]
    agg = next(n for n in walk(after) if isinstance(n, WindowAggregate))
    assert agg.assigns and "ts" in agg.input.schema.names
    assert "window_end" not in agg.input.schema.names
    assert after[0].schema == roots[0].schema


def test_window_columns_used_in_a_filter_keep_the_tvf(planner):
    roots = _prepared(
        planner,
        f"SELECT window_start, COUNT(*) AS n FROM {HOP} WHERE ts > window_start "
        "GROUP BY window_start, window_end",
    )
    after = fuse_window_assignment(roots, planner.ctx())
    assert after == roots or [n for n in walk(after) if isinstance(n, WindowTVF)]
    assert not next(n for n in walk(after) if isinstance(n, WindowAggregate)).assigns


def test_hop_rows_cross_the_exchange_once(planner):
    sql = (
        f"SELECT window_start, auction, COUNT(*) AS n FROM {HOP} "
        "GROUP BY window_start, window_end, auction"
    )
    roots = optimize(planner.bind(sql), OptimizerContext(parallelism=2)).roots
    agg = next(n for n in walk(roots) if isinstance(n, WindowAggregate))
    assert agg.assigns
    assert agg.input.name == "Exchange" and "window_start" not in agg.input.schema.names
