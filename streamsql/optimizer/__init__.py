"""The optimizer: a tuple of small rules, each a plain function over the plan's roots.

Every rule can be switched off by name ('table.optimizer.disabled-rules'), and the plan is
checked after each one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streamsql.errors import PlanError
from streamsql.optimizer.assign_parallelism import assign_parallelism
from streamsql.optimizer.check import check_plan
from streamsql.optimizer.choose_grouping_keys import choose_grouping_keys
from streamsql.optimizer.context import OptimizerContext
from streamsql.optimizer.fold_constants import fold_constants
from streamsql.optimizer.fuse_window_assignment import fuse_window_assignment
from streamsql.optimizer.insert_exchanges import insert_exchanges
from streamsql.optimizer.merge_projections import merge_projections
from streamsql.optimizer.prune_columns import prune_columns
from streamsql.optimizer.push_down_filters import push_down_filters
from streamsql.optimizer.share_sources import share_sources
from streamsql.optimizer.split_window_aggregates import split_window_aggregates
from streamsql.plan.nodes import PlanNode, WindowTVF, walk

Rule = Callable[[tuple[PlanNode, ...], OptimizerContext], tuple[PlanNode, ...]]

RULES: tuple[Rule, ...] = (
    fold_constants,
    push_down_filters,
    prune_columns,
    merge_projections,
    fuse_window_assignment,
    share_sources,
    choose_grouping_keys,
    assign_parallelism,
    split_window_aggregates,
    insert_exchanges,
)

#: Rules that decide how the job runs; the plan cannot execute without them.
REQUIRED = frozenset({"choose_grouping_keys", "assign_parallelism", "insert_exchanges"})


@dataclass
class Optimized:
    roots: tuple[PlanNode, ...]
    trace: list[tuple[str, tuple[PlanNode, ...]]] = field(default_factory=list)


def optimize(
    roots: tuple[PlanNode, ...], ctx: OptimizerContext, rules: tuple[Rule, ...] = RULES
) -> Optimized:
    """Run ``rules`` in order; the result keeps the plan after each rule for EXPLAIN VERBOSE."""
    result = Optimized(roots)
    for rule in rules:
        name = rule.__name__
        if name in ctx.disabled and name not in REQUIRED:
            continue
        roots = rule(roots, ctx)
        check_plan(roots, name)
        result.trace.append((name, roots))
    _check_sessions(roots, fused="fuse_window_assignment" not in ctx.disabled)
    result.roots = roots
    return result


def _check_sessions(roots: tuple[PlanNode, ...], *, fused: bool) -> None:
    """A SESSION window is known only when it closes: its rows can only be aggregated."""
    for node in walk(roots):
        if isinstance(node, WindowTVF) and node.window.is_session:
            raise PlanError(
                "SESSION windows can only be aggregated: GROUP BY window_start, window_end "
                "and the PARTITION BY columns, using the window columns in nothing else "
                "before the aggregation",
                hint="e.g. SELECT window_start, window_end, k, COUNT(*) FROM TABLE(SESSION("
                "TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTE)) "
                "GROUP BY window_start, window_end, k"
                + ("" if fused else "; and keep rule fuse_window_assignment switched on"),
            )


__all__ = ["REQUIRED", "RULES", "Optimized", "OptimizerContext", "optimize"]
