"""Rule: evaluate constant sub-expressions once, at planning time."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import StreamSQLError
from streamsql.expr import compile_expr, literal_expr
from streamsql.optimizer.context import OptimizerContext
from streamsql.parser.dialect import to_sql
from streamsql.plan.nodes import Filter, PlanNode, Project, transform_up

_ONE_ROW = pa.record_batch({"$": pa.array([0], pa.int8())})
_SKIP = (exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Interval, exp.DataType, exp.Identifier)


def fold_constants(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """``price > 2 * 5`` becomes ``price > 10``; a WHERE that folds to TRUE disappears."""

    def rewrite(node: PlanNode) -> PlanNode:
        match node:
            case Filter():
                cond = fold(node.condition)
                if isinstance(cond, exp.Boolean) and cond.this is True:
                    return node.input
                return node if cond is node.condition else Filter(node.input, cond)
            case Project():
                exprs = tuple((n, fold(e)) for n, e in node.exprs)
                if all(a[1] is b[1] for a, b in zip(exprs, node.exprs, strict=True)):
                    return node
                return Project(node.input, exprs, parallelism=node.parallelism)
        return node

    return transform_up(roots, rewrite)


def fold(e: exp.Expression) -> exp.Expression:
    """``e`` with its maximal constant sub-trees replaced by literals (same type)."""
    changed = False

    def visit(node: exp.Expression) -> exp.Expression:
        nonlocal changed
        if isinstance(node, _SKIP) or node.find(exp.Column) is not None:
            return node
        try:
            compiled = compile_expr(node, _ONE_ROW.schema)
            if not compiled.deterministic:
                return node
            value = compiled.evaluate(_ONE_ROW)[0]
        except StreamSQLError:
            return node  # leave it for the runtime to report with context
        literal = literal_expr(value)
        if literal is None or to_sql(literal) == to_sql(node):
            return node
        changed = True
        return literal

    folded = e.copy().transform(visit)
    return folded if changed else e
