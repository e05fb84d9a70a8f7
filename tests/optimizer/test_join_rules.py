"""The optimizer rules on joins and UNION ALL: filter push-down into the sides a join never
NULL-pads, each input hashed on its own side of the keys, pruning through joins.
"""

from __future__ import annotations

import pytest

from streamsql.optimizer import optimize
from streamsql.optimizer.choose_grouping_keys import choose_grouping_keys
from streamsql.optimizer.insert_exchanges import insert_exchanges
from streamsql.optimizer.prune_columns import prune_columns
from streamsql.optimizer.push_down_filters import push_down_filters
from streamsql.plan.join_nodes import Join, LookupJoin, Union
from streamsql.plan.nodes import Exchange, Filter, Scan, walk

JOIN = "SELECT * FROM bids a {kind} JOIN bids b ON a.auction = b.auction WHERE {where}"


def _join(roots) -> Join:
    return next(n for n in walk(roots) if isinstance(n, Join))


def _has_filter(node) -> bool:
    return any(isinstance(n, Filter) for n in walk(node))


def _filters_above(join: Join, roots) -> list[Filter]:
    return [n for n in walk(roots) if isinstance(n, Filter) and n.input is join]


@pytest.mark.parametrize(
    ("kind", "left", "right", "kept"),
    [
        ("INNER", True, True, False),
        ("LEFT", True, False, True),
        ("RIGHT", False, True, True),
        ("FULL", False, False, True),
    ],
)
def test_one_sided_conditions_move_into_the_sides_that_are_never_padded(
    planner, kind, left, right, kept
):
    roots = planner.bind(JOIN.format(kind=kind, where="a.price > 5 AND b.price < 9"))
    after = push_down_filters(roots, planner.ctx())
    join = _join(after)
    assert _has_filter(join.left) is left
    assert _has_filter(join.right) is right
    assert bool(_filters_above(join, after)) is kept


def test_conditions_on_both_sides_stay_above_the_join(planner):
    roots = planner.bind(JOIN.format(kind="INNER", where="a.price > b.price"))
    after = push_down_filters(roots, planner.ctx())
    join = _join(after)
    assert isinstance(join.left, Scan)
    assert len(_filters_above(join, after)) == 1


def test_each_input_is_hashed_on_its_own_keys(planner):
    roots = planner.bind(
        "SELECT a.price, b.bidder FROM bids a JOIN bids b "
        "ON a.auction = b.bidder AND a.channel = b.url"
    )
    roots = choose_grouping_keys(roots, planner.ctx())
    join = _join(roots)
    assert join.shuffle_keys == (("auction", "channel"), ("bidder0", "url0"))
    roots = optimize(roots, planner.ctx(2)).roots
    join = _join(roots)
    assert join.parallelism == 2
    left, right = join.inputs
    assert isinstance(left, Exchange) and left.distribution.keys == ("auction", "channel")
    assert isinstance(right, Exchange) and right.distribution.keys == ("bidder0", "url0")


def test_a_join_without_keys_runs_as_one_instance(planner):
    roots = optimize(planner.bind("SELECT * FROM bids a, bids b"), planner.ctx(4)).roots
    join = _join(roots)
    assert join.parallelism == 1
    assert all(
        not isinstance(i, Exchange) or i.distribution.kind == "singleton" for i in join.inputs
    )


def test_pruning_keeps_keys_and_condition_columns_on_each_side(planner):
    roots = planner.bind(
        "SELECT a.price FROM bids a JOIN bids b ON a.auction = b.auction AND b.url <> a.channel"
    )
    after = prune_columns(roots, planner.ctx())
    scans = [n for n in walk(after) if isinstance(n, Scan)]
    assert sorted(scans[0].columns) == ["auction", "channel", "price"]
    assert sorted(scans[1].columns) == ["auction", "url"]


def test_union_all_inputs_are_conformed_and_not_pruned_apart(planner):
    roots = planner.bind(
        "SELECT auction, price FROM bids UNION ALL SELECT bidder, CAST(price AS INT) FROM bids"
    )
    after = optimize(roots, planner.ctx()).roots
    union = next(n for n in walk(after) if isinstance(n, Union))
    first, second = union.inputs
    assert first.schema.names == second.schema.names == ["auction", "price"]
    assert first.schema.types == second.schema.types  # INT widened to BIGINT


def test_lookup_join_reads_only_the_table_columns_used(planner, tmp_path):
    (tmp_path / "d.csv").write_text("1,a,x\n")
    planner.session.execute(
        f"CREATE TABLE d (id BIGINT, label STRING, extra STRING) WITH ('connector' = "
        f"'filesystem', 'path' = '{tmp_path}/d.csv', 'format' = 'csv')"
    )
    planner.session.execute(
        "CREATE TABLE s (k BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen', "
        "'number-of-rows' = '5')"
    )
    roots = planner.bind(
        "SELECT s.k, d.label FROM s JOIN d FOR SYSTEM_TIME AS OF s.pt ON s.k = d.id"
    )
    after = prune_columns(roots, planner.ctx())
    lookup = next(n for n in walk(after) if isinstance(n, LookupJoin))
    assert lookup.columns == ("label",)
    assert lookup.table_keys == ("id",)


def test_exchanges_keep_the_input_order(planner):
    roots = planner.bind(JOIN.format(kind="LEFT", where="TRUE"))
    roots = insert_exchanges(choose_grouping_keys(roots, planner.ctx(2)), planner.ctx(2))
    join = _join(roots)
    assert join.left.schema.names[0] == "auction"
