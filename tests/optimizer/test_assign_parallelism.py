from streamsql.optimizer.assign_parallelism import assign_parallelism
from streamsql.optimizer.choose_grouping_keys import choose_grouping_keys
from streamsql.plan.nodes import Filter, Scan, WindowAggregate, walk

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"


def _prepared(planner, sql, p):
    roots = choose_grouping_keys(planner.bind(sql), planner.ctx(p))
    return assign_parallelism(roots, planner.ctx(p))


def test_source_one_stateful_default_downstream_inherits(planner):
    roots = _prepared(
        planner,
        f"SELECT window_start, auction, COUNT(*) AS n FROM {TUMBLE} "
        "GROUP BY window_start, window_end, auction",
        4,
    )
    by_kind = {type(n).__name__: n.parallelism for n in walk(roots)}
    assert by_kind["Scan"] == 1
    assert by_kind["WindowTVF"] == 4
    assert by_kind["WindowAggregate"] == 4
    assert by_kind["Collect"] == 4


def test_keyless_window_aggregate_runs_once(planner):
    roots = _prepared(
        planner,
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end",
        4,
    )
    agg = next(n for n in walk(roots) if isinstance(n, WindowAggregate))
    assert agg.parallelism == 1


def test_parallelism_one_everywhere(planner):
    roots = _prepared(planner, "SELECT auction FROM bids WHERE price > 1", 1)
    assert {n.parallelism for n in walk(roots)} == {1}
    assert isinstance(next(n for n in walk(roots) if isinstance(n, Filter)).input, Scan)


def test_scan_parallelism_comes_from_the_table(planner):
    planner.session.execute(
        "CREATE TABLE wide (a BIGINT, b BIGINT) "
        "WITH ('connector' = 'datagen', 'number-of-rows' = '10', 'scan.parallelism' = '3')"
    )
    roots = _prepared(planner, "SELECT a, COUNT(*) AS n FROM wide GROUP BY a", 2)
    by_kind = {type(n).__name__: n.parallelism for n in walk(roots)}
    assert by_kind["Scan"] == 3
    assert by_kind["Aggregate"] == 2
