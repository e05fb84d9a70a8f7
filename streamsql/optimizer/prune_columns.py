"""Rule: read and carry only the columns something downstream uses."""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.join_nodes import Join, LookupJoin, RegularJoin
from streamsql.plan.nodes import (
    WINDOW_COLUMNS,
    Aggregate,
    Filter,
    PlanNode,
    Project,
    Scan,
    TopN,
    WindowAggregate,
    WindowTopN,
    WindowTVF,
    walk,
)
from streamsql.plan.predicates import column_refs


def prune_columns(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """Scans read fewer columns, projections drop unused expressions, and projections that
    only pass their input through disappear. A job without any event-time operator does not
    generate watermarks, so its scans skip the time column too.
    """
    order = walk(roots)
    timed = any(_uses_event_time(n) for n in order)
    needed: dict[int, set[str]] = {id(r): set(r.schema.names) for r in roots}
    for node in reversed(order):  # consumers before their inputs
        want = needed.setdefault(id(node), set())
        for child, cols in zip(node.inputs, _input_needs(node, want), strict=True):
            needed.setdefault(id(child), set()).update(cols)

    memo: dict[int, PlanNode] = {}

    def rebuild(node: PlanNode) -> PlanNode:
        if id(node) in memo:
            return memo[id(node)]
        inputs = tuple(rebuild(i) for i in node.inputs)
        want = needed[id(node)]
        result = _pruned(node, inputs, want, any(node is r for r in roots), timed)
        memo[id(node)] = result
        return result

    return tuple(rebuild(r) for r in roots)


def _input_needs(node: PlanNode, want: set[str]) -> list[set[str]]:
    match node:
        case Project():
            kept = _kept(node, want)
            return [set().union(*(column_refs(e) for _, e in kept)) or set()]
        case Filter():
            return [want | column_refs(node.condition)]
        case WindowTVF():
            return [(want - set(WINDOW_COLUMNS)) | {node.window.time_col}]
        case WindowAggregate() | Aggregate():
            cols = set(node.keys)
            if isinstance(node, WindowAggregate):
                cols |= set(node.window_inputs)
            for a in node.aggs:
                cols |= {c for c in (a.arg, a.filter) if c}
            return [cols | _late_columns(node)]
        case Join():
            used = want | (column_refs(node.condition) if node.condition is not None else set())
            used |= {c for c in vars(node.strategy).values() if isinstance(c, str)}
            needs = []
            for child, keys in ((node.left, node.left_keys), (node.right, node.right_keys)):
                names = child.schema.names
                cols = {c for c in used if c in names} | set(keys)
                needs.append(cols or {names[0]})
            return needs
        case LookupJoin():
            used = want | (column_refs(node.condition) if node.condition is not None else set())
            names = node.input.schema.names
            return [{c for c in used if c in names} | set(node.left_keys) or {names[0]}]
        case TopN() | WindowTopN():
            cols = (want - {node.rank_name}) | set(node.partition_keys)
            cols |= {k.column for k in node.order}
            if isinstance(node, WindowTopN):
                cols.add(node.window_end)
            return [cols | _late_columns(node)]
    return [set(i.schema.names) for i in node.inputs]


def _late_columns(node: PlanNode) -> set[str]:
    """Input columns a windowed node hands to the late-row table: kept, though unused."""
    late = getattr(node, "late_sink", None)
    return set(late.columns) if late else set()


def _kept(node: Project, want: set[str]) -> tuple[tuple[str, exp.Expression], ...]:
    kept = tuple((n, e) for n, e in node.exprs if n in want)
    return kept or node.exprs[:1]  # a batch needs at least one column to carry its rows


def _uses_event_time(node: PlanNode) -> bool:
    if isinstance(node, WindowTVF | WindowAggregate | WindowTopN):
        return True
    if isinstance(node, Join) and not isinstance(node.strategy, RegularJoin):
        return True
    exprs = [e for _, e in node.exprs] if isinstance(node, Project) else []
    if isinstance(node, Filter):
        exprs.append(node.condition)
    return any(
        f.name.upper() == "CURRENT_WATERMARK" for e in exprs for f in e.find_all(exp.Anonymous)
    )


def _pruned(
    node: PlanNode, inputs: tuple[PlanNode, ...], want: set[str], is_root: bool, timed: bool
) -> PlanNode:
    match node:
        case Scan():
            cols = tuple(c for c in node.columns if c in want) or node.columns[:1]
            if cols == node.columns and node.watermarks == timed:
                return node
            return dataclasses.replace(node, columns=cols, watermarks=timed)
        case TopN() if node.rank_name and node.rank_name not in want and not is_root:
            # Nobody reads the rank: emit rows entering and leaving the top only.
            return dataclasses.replace(node, input=inputs[0], rank_name=None)
        case LookupJoin():
            used = want | (column_refs(node.condition) if node.condition is not None else set())
            pairs = [(c, n) for c, n in zip(node.columns, node.names, strict=True) if n in used]
            if len(pairs) != len(node.columns) or inputs[0] is not node.input:
                return dataclasses.replace(
                    node,
                    input=inputs[0],
                    columns=tuple(c for c, _ in pairs),
                    names=tuple(n for _, n in pairs),
                )
            return node
        case Project():
            exprs = node.exprs if is_root else _kept(node, want)
            project = Project(inputs[0], exprs, parallelism=node.parallelism)
            if not is_root and project.is_identity():
                return inputs[0]
            return project
    changed = any(a is not b for a, b in zip(inputs, node.inputs, strict=True))
    return node.with_inputs(*inputs) if changed else node
