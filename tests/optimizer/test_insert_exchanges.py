from streamsql.optimizer import optimize
from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.nodes import Exchange, WindowAggregate, walk

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
AGG = (
    f"SELECT window_start, auction, COUNT(*) AS n FROM {TUMBLE} "
    "GROUP BY window_start, window_end, auction"
)


def _exchanges(roots):
    return [n.distribution.describe() for n in walk(roots) if isinstance(n, Exchange)]


def test_hash_exchange_on_group_keys(planner):
    roots = optimize(planner.bind(AGG), OptimizerContext(parallelism=2)).roots
    assert _exchanges(roots) == ["hash[auction]"]
    agg = next(n for n in walk(roots) if isinstance(n, WindowAggregate))
    assert isinstance(agg.input, Exchange)


def test_no_exchange_at_parallelism_one(planner):
    roots = optimize(planner.bind(AGG), OptimizerContext(parallelism=1)).roots
    assert _exchanges(roots) == []


def test_singleton_for_keyless_aggregate(planner):
    sql = (
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} WHERE price > 1 "
        "GROUP BY window_start, window_end"
    )
    roots = optimize(planner.bind(sql), OptimizerContext(parallelism=3)).roots
    assert _exchanges(roots) == ["round_robin", "singleton"]  # filter spread, then gathered


def test_rules_can_be_switched_off_but_not_the_required_ones(planner):
    ctx = OptimizerContext(
        parallelism=2, disabled=frozenset({"fold_constants", "insert_exchanges"})
    )
    result = optimize(planner.bind(AGG), ctx)
    ran = [name for name, _ in result.trace]
    assert "fold_constants" not in ran
    assert "insert_exchanges" in ran
