"""Binding ``UNION ALL``: the branches' columns matched by position, cast to common types
and named after the first branch's.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import BindError, PlanError
from streamsql.parser.dialect import Flink
from streamsql.parser.spans import span_of
from streamsql.plan.join_nodes import Union
from streamsql.plan.nodes import PlanNode, Project
from streamsql.plan.scope import Scope
from streamsql.types import sql_type_name


def bind_union(binder, tree: exp.Union, ctes: dict[str, Scope]) -> Scope:
    if tree.args.get("distinct"):
        raise PlanError(
            "UNION (distinct) is not supported on streams",
            span=span_of(tree),
            hint="use UNION ALL; to drop duplicates, GROUP BY every column of the union",
        )
    branches = [binder.bind_query(b, ctes) for b in _branches(tree)]
    first = branches[0]
    names = first.node.schema.names
    width = len(names)
    for b, at in zip(branches[1:], _branches(tree)[1:], strict=True):
        if len(b.node.schema) != width:
            raise BindError(
                f"UNION ALL branches differ in their number of columns: {width} and "
                f"{len(b.node.schema)}",
                span=span_of(at),
            )
    types = []
    for i in range(width):
        t = first.node.schema.field(i).type
        for b in branches[1:]:
            other = b.node.schema.field(i).type
            common = _common(t, other)
            if common is None:
                raise BindError(
                    f"UNION ALL column {i + 1} ('{names[i]}') is {sql_type_name(t)} in one "
                    f"branch and {sql_type_name(other)} in another",
                    span=span_of(tree),
                    hint="CAST the column to one type in every branch",
                )
            t = common
        types.append(t)
    parts = tuple(_conform(b.node, names, types) for b in branches)
    return Scope.of(Union(parts))


def _branches(tree: exp.Expression) -> list[exp.Expression]:
    if isinstance(tree, exp.Union) and not tree.args.get("distinct"):
        return _branches(tree.this) + _branches(tree.expression)
    return [tree]


def _conform(node: PlanNode, names: list[str], types: list[pa.DataType]) -> PlanNode:
    schema = node.schema
    if schema.names == names and schema.types == types:
        return node
    exprs = []
    for f, name, t in zip(schema, names, types, strict=True):
        col: exp.Expression = exp.column(f.name, quoted=True)
        if f.type != t:
            col = exp.Cast(this=col, to=exp.DataType.build(sql_type_name(t), dialect=Flink))
        exprs.append((name, col))
    return Project(node, tuple(exprs))


def _common(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    from streamsql.plan.joins import common_type

    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    return common_type(a, b)
