from streamsql.optimizer.choose_grouping_keys import choose_grouping_keys
from streamsql.plan.nodes import WindowAggregate, walk

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"


def _agg(roots) -> WindowAggregate:
    return next(n for n in walk(roots) if isinstance(n, WindowAggregate))


def test_window_aggregate_partitions_by_its_keys_not_the_window(planner):
    roots = planner.bind(
        f"SELECT window_start, auction, channel, COUNT(*) AS n FROM {TUMBLE} "
        "GROUP BY window_start, window_end, auction, channel"
    )
    assert _agg(roots).shuffle_keys is None
    assert _agg(choose_grouping_keys(roots, planner.ctx())).shuffle_keys == (
        "auction",
        "channel",
    )


def test_global_window_has_no_shuffle_keys(planner):
    roots = planner.bind(
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end"
    )
    assert _agg(choose_grouping_keys(roots, planner.ctx())).shuffle_keys == ()
