from streamsql.optimizer.prune_columns import prune_columns
from streamsql.plan.nodes import Project, Scan, walk

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"


def _scan(roots) -> Scan:
    return next(n for n in walk(roots) if isinstance(n, Scan))


def test_scan_reads_only_used_columns(planner):
    roots = planner.bind("SELECT auction FROM bids WHERE price > 3")
    after = prune_columns(roots, planner.ctx())
    assert _scan(after).columns == ("auction", "price")


def test_window_aggregate_needs_time_keys_and_arguments(planner):
    roots = planner.bind(
        f"SELECT window_start, COUNT(*) AS n, MAX(price) AS m FROM {TUMBLE} "
        "GROUP BY window_start, window_end, auction"
    )
    after = prune_columns(roots, planner.ctx())
    assert set(_scan(after).columns) == {"auction", "price", "ts"}


def test_unused_computed_column_is_not_read(planner):
    roots = planner.bind("SELECT price_cents FROM bids")
    after = prune_columns(roots, planner.ctx())
    assert _scan(after).columns == ("price_cents",)


def test_identity_projection_disappears(planner):
    roots = planner.bind("SELECT * FROM (SELECT auction, price FROM bids) WHERE auction > 1")
    after = prune_columns(roots, planner.ctx())
    assert [n for n in walk(roots) if isinstance(n, Project)]
    assert not [n for n in walk(after) if isinstance(n, Project)]
    assert after[0].schema == roots[0].schema


def test_nothing_needed_still_keeps_one_column(planner):
    roots = planner.bind(
        f"SELECT window_start, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end"
    )
    after = prune_columns(roots, planner.ctx())
    assert _scan(after).columns == ("ts",)
