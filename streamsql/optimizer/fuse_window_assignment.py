"""Rule: a window aggregate assigns windows itself instead of reading a WindowTVF's rows."""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.nodes import (
    WINDOW_COLUMNS,
    Filter,
    PlanNode,
    Project,
    WindowAggregate,
    WindowSpec,
    WindowTVF,
    transform_up,
)
from streamsql.plan.predicates import column_refs


def fuse_window_assignment(
    roots: tuple[PlanNode, ...], ctx: OptimizerContext
) -> tuple[PlanNode, ...]:
    """``WindowAggregate(Project(WindowTVF(x)))`` becomes ``WindowAggregate(Project(x))``
    that places rows in windows on its own, as Flink plans window aggregation: no window
    columns are materialized, and a HOP row crosses the exchange once, not once per
    window. Filters and projections in between stay, unless they use the window columns
    for anything but passing them on (then nothing changes).
    """

    def fuse(node: PlanNode) -> PlanNode:
        if not isinstance(node, WindowAggregate) or node.assigns:
            return node
        session = node.window.is_session  # sessions are only ever assigned by the aggregate
        if node.late_sink and set(node.late_sink.columns) & set(WINDOW_COLUMNS) and not session:
            return node  # late rows keep the window columns they were given
        path: list[Project | Filter] = []
        cur = node.input
        while isinstance(cur, Project | Filter):
            path.append(cur)
            cur = cur.input
        if not (isinstance(cur, WindowTVF) and _same_window(cur.window, node.window)):
            return node
        rebuilt = _without_window_columns(path, cur.input, node.window.time_col)
        if rebuilt is None:
            return node
        return dataclasses.replace(node, input=rebuilt, assigns=True)

    return transform_up(roots, fuse)


def _same_window(tvf: WindowSpec, agg: WindowSpec) -> bool:
    """The aggregate's window is the TVF's (its SESSION partition named as group keys)."""
    return dataclasses.replace(tvf, partition=agg.partition) == agg


def _without_window_columns(
    path: list[Project | Filter], base: PlanNode, time_col: str
) -> PlanNode | None:
    """The nodes of ``path`` rebuilt over ``base``, passing ``time_col`` instead of the
    window columns; None when a node uses the window columns in an expression.
    """
    rebuilt = base
    for node in reversed(path):
        if isinstance(node, Filter):
            if column_refs(node.condition) & set(WINDOW_COLUMNS):
                return None
            rebuilt = Filter(rebuilt, node.condition, parallelism=node.parallelism)
            continue
        exprs: list[tuple[str, exp.Expression]] = []
        for name, e in node.exprs:
            passes = isinstance(e, exp.Column) and e.name == name
            if name in ("window_start", "window_end") and passes:
                continue
            if column_refs(e) & set(WINDOW_COLUMNS) or (name == time_col and not passes):
                return None
            exprs.append((name, e))
        if time_col not in (n for n, _ in exprs):
            exprs.append((time_col, exp.column(time_col, quoted=True)))
        project = Project(rebuilt, tuple(exprs), parallelism=node.parallelism)
        rebuilt = rebuilt if project.is_identity() else project
    if time_col not in rebuilt.schema.names:
        return None
    return rebuilt
