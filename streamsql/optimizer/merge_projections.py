"""Rule: a projection of a projection becomes one projection."""

from __future__ import annotations

from collections import Counter

from sqlglot import exp

from streamsql.expr import compile_expr
from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.nodes import PlanNode, Project, transform_up


def merge_projections(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """``Project(Project(x, inner), outer)`` computes ``outer`` over ``inner``'s expressions
    directly, unless that would compute a non-trivial inner expression twice.
    """

    def merge(node: PlanNode) -> PlanNode:
        if not (isinstance(node, Project) and isinstance(node.input, Project)):
            return node
        inner = node.input
        defs = dict(inner.exprs)
        uses = Counter(c.name for _, e in node.exprs for c in e.find_all(exp.Column))
        for name, count in uses.items():
            if count > 1 and not _trivial(defs[name]):
                return node
        schema = inner.input.schema
        if not all(compile_expr(e, schema).deterministic for e in defs.values()):
            return node
        exprs = tuple((name, _inline(e, defs)) for name, e in node.exprs)
        return Project(inner.input, exprs, parallelism=node.parallelism)

    return transform_up(roots, merge)


def _trivial(e: exp.Expression) -> bool:
    return isinstance(e, exp.Column | exp.Literal | exp.Null | exp.Boolean)


def _inline(e: exp.Expression, defs: dict[str, exp.Expression]) -> exp.Expression:
    if isinstance(e, exp.Column):
        return defs[e.name].copy()

    def sub(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            replacement = defs[node.name].copy()
            return replacement if _trivial(replacement) else exp.Paren(this=replacement)
        return node

    return e.copy().transform(sub)
