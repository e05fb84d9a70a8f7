"""Rule: move filters towards the sources so that fewer rows travel and are stored."""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from streamsql.expr import compile_expr
from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.join_nodes import Join
from streamsql.plan.nodes import (
    WINDOW_COLUMNS,
    Aggregate,
    Filter,
    PlanNode,
    Project,
    TopN,
    WindowAggregate,
    WindowTVF,
    transform_up,
)
from streamsql.plan.predicates import column_refs, conjoin, conjuncts


def push_down_filters(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """Merge stacked filters and push conjuncts below projections, window assignment and
    (for conditions on group or partition keys only) below aggregates and rankings: a
    condition on the key keeps or drops whole groups, whichever side it is applied on.
    Conditions on one input of a join move into that input (see ``_below_join``).
    """

    def rewrite(node: PlanNode) -> PlanNode:
        if not isinstance(node, Filter):
            return node
        child = node.input
        match child:
            case Filter():
                return rewrite(Filter(child.input, conjoin([child.condition, node.condition])))
            case Project() if _deterministic(child):
                inlined = _inline(node.condition, dict(child.exprs))
                return Project(rewrite(Filter(child.input, inlined)), child.exprs)
            case WindowTVF():
                down, keep = _split(node.condition, lambda c: not (c & set(WINDOW_COLUMNS)))
                if not down:
                    return node
                pushed = WindowTVF(rewrite(Filter(child.input, conjoin(down))), child.window)
                return Filter(pushed, conjoin(keep)) if keep else pushed
            case WindowAggregate() | Aggregate() | TopN():
                keys = set(child.partition_keys if isinstance(child, TopN) else child.keys)
                down, keep = _split(node.condition, lambda c: bool(c) and c <= keys)
                if not down:
                    return node
                pushed = dataclasses.replace(
                    child, input=rewrite(Filter(child.input, conjoin(down)))
                )
                return Filter(pushed, conjoin(keep)) if keep else pushed
            case Join():
                return _below_join(node, child, rewrite)
        return node

    return transform_up(roots, rewrite)


def _below_join(node: Filter, join: Join, rewrite) -> PlanNode:
    """Conditions on one input only move below the join into that input, on the sides
    whose rows the join never NULL-pads (the left of a LEFT join, both of an INNER join).
    """
    lnames, rnames = set(join.left.schema.names), set(join.right.schema.names)
    sides = {"INNER": (True, True), "LEFT": (True, False), "RIGHT": (False, True)}
    to_left, to_right = sides.get(join.kind, (False, False))
    left, right, keep = [], [], []
    for c in conjuncts(node.condition):
        cols = column_refs(c)
        if to_left and cols and cols <= lnames and _pure(c):
            left.append(c)
        elif to_right and cols and cols <= rnames and _pure(c):
            right.append(c)
        else:
            keep.append(c)
    if not left and not right:
        return node
    new_left = rewrite(Filter(join.left, conjoin(left))) if left else join.left
    new_right = rewrite(Filter(join.right, conjoin(right))) if right else join.right
    pushed = join.with_inputs(new_left, new_right)
    return Filter(pushed, conjoin(keep)) if keep else pushed


def _pure(c: exp.Expression) -> bool:
    """No function of processing time or the watermark, which differ on each side."""
    names = {f.name.upper() for f in c.find_all(exp.Anonymous)}
    return not names & {"CURRENT_WATERMARK", "PROCTIME", "NOW"}


def _split(cond: exp.Expression, pushable) -> tuple[list[exp.Expression], list[exp.Expression]]:
    down, keep = [], []
    for c in conjuncts(cond):
        (down if pushable(column_refs(c)) else keep).append(c)
    return down, keep


def _deterministic(project: Project) -> bool:
    schema = project.input.schema
    return all(compile_expr(e, schema).deterministic for _, e in project.exprs)


def _inline(cond: exp.Expression, exprs: dict[str, exp.Expression]) -> exp.Expression:
    def sub(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name in exprs:
            replacement = exprs[node.name].copy()
            return replacement if _atomic(replacement) else exp.Paren(this=replacement)
        return node

    return cond.copy().transform(sub)


def _atomic(e: exp.Expression) -> bool:
    return isinstance(e, exp.Column | exp.Literal | exp.Anonymous | exp.Func | exp.Paren)
