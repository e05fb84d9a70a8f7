from streamsql.optimizer.fold_constants import fold_constants
from tests.optimizer.conftest import show


def test_constant_arithmetic_becomes_a_literal(planner):
    roots = planner.bind("SELECT auction FROM bids WHERE price > 2 * 5 + 1")
    after = show(fold_constants(roots, planner.ctx()))
    assert "price > 11" in after
    assert "2 * 5" not in after


def test_where_true_disappears(planner):
    roots = planner.bind("SELECT auction FROM bids WHERE 1 = 1")
    after = show(fold_constants(roots, planner.ctx()))
    assert "Filter" not in after


def test_non_deterministic_calls_are_kept(planner):
    roots = planner.bind("SELECT auction, RAND() AS r, CURRENT_TIMESTAMP AS now FROM bids")
    after = show(fold_constants(roots, planner.ctx()))
    assert "RAND()" in after
    assert "CURRENT_TIMESTAMP" in after


def test_folded_literal_keeps_its_type(planner):
    roots = planner.bind("SELECT CAST(1 AS BIGINT) + 1 AS x FROM bids")
    folded = fold_constants(roots, planner.ctx())
    assert roots[0].schema == folded[0].schema
    assert "+ 1" not in show(folded)


def test_columns_are_never_folded(planner):
    roots = planner.bind("SELECT price + 0 AS p FROM bids")
    assert fold_constants(roots, planner.ctx())[0] is roots[0]
