from streamsql.optimizer.push_down_filters import push_down_filters
from streamsql.plan.nodes import Filter, Project, Scan, WindowAggregate, WindowTVF, walk
from tests.optimizer.conftest import show

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"


def _kinds(roots):
    return [type(n).__name__ for n in walk(roots)]


def test_filter_moves_below_projection(planner):
    roots = planner.bind("SELECT * FROM (SELECT auction, price * 2 AS p2 FROM bids) WHERE p2 > 10")
    after = push_down_filters(roots, planner.ctx())
    nodes = walk(after)
    filt = next(n for n in nodes if isinstance(n, Filter))
    assert isinstance(filt.input, Scan)
    assert "price * 2" in show(after)


def test_stacked_filters_merge(planner):
    roots = planner.bind("SELECT * FROM (SELECT * FROM bids WHERE price > 1) WHERE auction < 5")
    after = push_down_filters(roots, planner.ctx())
    filters = [n for n in walk(after) if isinstance(n, Filter)]
    assert len(filters) == 1
    assert "price > 1" in show(after) and "auction < 5" in show(after)


def test_filter_on_input_columns_moves_below_window_assignment(planner):
    roots = planner.bind(f"SELECT * FROM {TUMBLE} WHERE price > 10 AND window_start > ts")
    after = push_down_filters(roots, planner.ctx())
    tvf = next(n for n in walk(after) if isinstance(n, WindowTVF))
    assert isinstance(tvf.input, Filter) and "price > 10" in show((tvf.input,))
    above = [n for n in walk(after) if isinstance(n, Filter) and isinstance(n.input, WindowTVF)]
    assert len(above) == 1 and "window_start" in show((above[0],)).split("\n")[0]


def test_having_on_group_key_moves_below_window_aggregate(planner):
    roots = planner.bind(
        f"SELECT window_start, auction, COUNT(*) AS n FROM {TUMBLE} "
        "GROUP BY window_start, window_end, auction HAVING auction > 3 AND COUNT(*) > 1"
    )
    after = push_down_filters(roots, planner.ctx())
    agg = next(n for n in walk(after) if isinstance(n, WindowAggregate))
    below = [n for n in walk((agg.input,)) if isinstance(n, Filter)]
    assert any("auction > 3" in show((f,)).split("\n")[0] for f in below)
    above = [n for n in walk(after) if isinstance(n, Filter) and n.input is agg]
    assert len(above) == 1 and "$agg" in show((above[0],)).split("\n")[0]


def test_results_keep_their_schema(planner):
    roots = planner.bind("SELECT * FROM (SELECT auction AS a FROM bids) WHERE a = 1")
    after = push_down_filters(roots, planner.ctx())
    assert after[0].schema == roots[0].schema
    assert isinstance(after[0].input, Project)
