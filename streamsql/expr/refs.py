"""Column references (exact name, else a unique case-insensitive match), parentheses, aliases."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import did_you_mean
from streamsql.expr import registry
from streamsql.expr.compiler import NILADIC, Compiler
from streamsql.expr.node import Node
from streamsql.parser.dialect import to_sql


def resolve(c: Compiler, name: str, at: exp.Expression) -> str:
    """The schema field ``name`` refers to; BindError with close names when there is none."""
    names = c.schema.names
    if name in names:
        return name
    folded = [n for n in names if n.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    if len(folded) > 1:
        raise c.error(
            f"column name '{name}' is ambiguous", at, hint="candidates: " + ", ".join(folded)
        )
    raise c.error(f"unknown column '{name}'", at, hint=did_you_mean(name, names, "column"))


def column(c: Compiler, name: str, at: exp.Expression) -> Node:
    """A node that reads one input column."""
    field = c.schema.field(resolve(c, name, at))
    key = field.name
    if pa.types.is_dictionary(field.type):
        value_type = field.type.value_type
        return Node(
            lambda b, ctx: b.column(key).dictionary_decode(), value_type, at, frozenset([key])
        )
    return Node(lambda b, ctx: b.column(key), field.type, at, frozenset([key]))


@registry.handles(exp.Column)
def _column(c: Compiler, e: exp.Column) -> Node:
    parts = [p for p in (e.args.get("catalog"), e.args.get("db"), e.args.get("table")) if p]
    if not parts:
        name = e.name
        if name.upper() in NILADIC and not _in_schema(c, name):
            return c.compile(exp.Anonymous(this=name.upper(), expressions=[]))
        return column(c, name, e.this)
    # a qualified name reaching here is a path into a ROW column: r.f, r.f.g
    from streamsql.expr.nested import field_access

    node = column(c, parts[0].name, parts[0])
    for ident in [*parts[1:], e.this]:
        node = field_access(c, e, node, ident.name, ident)
    return node


def _in_schema(c: Compiler, name: str) -> bool:
    return any(n.lower() == name.lower() for n in c.schema.names)


@registry.handles(exp.Paren)
def _paren(c: Compiler, e: exp.Paren) -> Node:
    return c.compile(e.this)


@registry.handles(exp.Alias)
def _alias(c: Compiler, e: exp.Alias) -> Node:
    return c.compile(e.this)


@registry.handles(exp.Var)
def _var(c: Compiler, e: exp.Var) -> Node:
    # sqlglot turns some bare identifiers into Var (e.g. the last TIMESTAMPDIFF argument)
    if _in_schema(c, e.name):
        return column(c, e.name, e)
    raise c.error(f"unknown column '{to_sql(e)}'", e, hint=did_you_mean(e.name, c.schema.names))
