from streamsql.optimizer.merge_projections import merge_projections
from streamsql.plan.nodes import Project, walk
from tests.optimizer.conftest import show


def _projects(roots):
    return [n for n in walk(roots) if isinstance(n, Project)]


def test_rename_over_computation_merges(planner):
    roots = planner.bind("SELECT p AS price2 FROM (SELECT price * 2 AS p FROM bids)")
    after = merge_projections(roots, planner.ctx())
    assert len(_projects(roots)) == 2 and len(_projects(after)) == 1
    assert "price * 2 AS price2" in show(after)
    assert after[0].schema == roots[0].schema


def test_expression_used_twice_is_not_computed_twice(planner):
    roots = planner.bind("SELECT p + p AS twice FROM (SELECT price * 2 AS p FROM bids)")
    after = merge_projections(roots, planner.ctx())
    assert len(_projects(after)) == 2


def test_non_deterministic_inner_expression_stays_put(planner):
    roots = planner.bind("SELECT r FROM (SELECT RAND() AS r, price FROM bids)")
    after = merge_projections(roots, planner.ctx())
    assert len(_projects(after)) == 2
