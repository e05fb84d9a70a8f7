"""Binding ``JOIN t FOR SYSTEM_TIME AS OF s.col``: an event-time temporal join when ``col``
is the left input's event time and ``t`` a versioned table (a PRIMARY KEY and a watermark),
otherwise a lookup join against a bounded table.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from streamsql.catalog import CatalogTable
from streamsql.errors import BindError, PlanError
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.plan.join_nodes import Join, LookupJoin, TemporalJoin
from streamsql.plan.joins import (
    common_type,
    disjoint,
    key_columns,
    on_condition,
    require_append_only,
    split_keys,
    sql_type,
    with_columns,
)
from streamsql.plan.nodes import PlanNode, Scan
from streamsql.plan.predicates import column_refs, conjoin, conjuncts
from streamsql.plan.scope import Scope, ScopeColumn
from streamsql.types import sql_type_name


def bind_as_of(binder, left: Scope, join: exp.Join, kind: str, version, ctes) -> Scope:
    item: exp.Table = join.this
    at = version.expression
    if kind not in ("INNER", "LEFT"):
        raise PlanError(
            f"{kind} JOIN ... FOR SYSTEM_TIME AS OF is not supported",
            span=span_of(join),
            hint="temporal and lookup joins are INNER or LEFT joins",
        )
    as_of = binder.expr(at, left)
    if not isinstance(as_of, exp.Column):
        raise BindError(
            "FOR SYSTEM_TIME AS OF needs a time column of the left input",
            span=span_of(at),
            hint="e.g. FOR SYSTEM_TIME AS OF o.order_time (event time) or o.proc_time",
        )
    found = binder.catalog.lookup(item.name, span_of(item)) if item.name not in ctes else None
    if not isinstance(found, CatalogTable):
        raise PlanError(
            f"FOR SYSTEM_TIME AS OF needs a table, but '{item.name}' is a view or CTE",
            span=span_of(item),
        )
    alias = item.alias or found.name
    if as_of.name == left.node.time_attr and found.primary_key and found.watermark:
        return _temporal(binder, left, join, kind, found, alias, as_of.name)
    found.validate_for("source")
    if not found.connector.is_bounded(found.context):
        raise PlanError(
            f"lookup join: table '{found.name}' is unbounded, so it cannot be loaded",
            span=span_of(item),
            hint="look up a bounded table (a file or a duckdb table), or give the table a "
            "PRIMARY KEY and a WATERMARK and join FOR SYSTEM_TIME AS OF the left input's "
            "event time (an event-time temporal join)",
        )
    return _lookup(binder, left, join, kind, found, alias)


def _temporal(binder, left, join, kind, table: CatalogTable, alias, left_time) -> Scope:
    table.validate_for("source")
    right = disjoint(left, Scope.of(Scan(table, tuple(table.schema.names)), alias))
    both = Scope(left.node, left.columns + right.columns)
    keys, rest = split_keys(on_condition(binder, join, left, right, both), left, right)
    left_node, right_node, lkeys, rkeys = key_columns(left.node, right.node, keys)
    pk = {right.resolve(exp.column(k)).name for k in table.primary_key}
    if not pk <= set(rkeys):
        raise PlanError(
            f"an event-time temporal join must join on the primary key of "
            f"'{table.name}' ({', '.join(table.primary_key)})",
            span=span_of(join),
            hint="add the missing key columns to the ON clause",
        )
    require_append_only(left, right, join, "a temporal join")
    strategy = TemporalJoin(left_time, right_node.time_attr or "")
    node = Join(left_node, right_node, kind, lkeys, rkeys, conjoin(rest), strategy)
    return Scope(node, left.columns + right.columns)


def _lookup(binder, left: Scope, join, kind, table: CatalogTable, alias) -> Scope:
    taken = set(left.node.schema.names)
    cols, names = [], []
    for c in table.schema.names:
        if c == table.proctime_attribute:
            continue
        new, i = c, 0
        while new in taken:
            new, i = f"{c}{i}", i + 1
        taken.add(new)
        cols.append(c)
        names.append(new)
    quals = frozenset([alias])
    dim = tuple(ScopeColumn(c, n, quals) for c, n in zip(cols, names, strict=True))
    both = Scope(left.node, left.columns + dim)
    dim_scope = Scope(left.node, dim)
    cond = on_condition(binder, join, left, dim_scope, both)
    lkeys: list[exp.Expression] = []
    tkeys: list[str] = []
    rest = []
    by_name = dict(zip(names, cols, strict=True))
    lnames = set(left.node.schema.names)
    for c in conjuncts(cond):
        if isinstance(c, exp.EQ):
            for a, b in ((c.this, c.expression), (c.expression, c.this)):
                if (
                    isinstance(b, exp.Column)
                    and b.name in by_name
                    and column_refs(a)
                    and column_refs(a) <= lnames
                ):
                    lkeys.append(a)
                    tkeys.append(by_name[b.name])
                    break
            else:
                rest.append(c)
            continue
        rest.append(c)
    if not tkeys:
        raise PlanError(
            f"a lookup join needs an equality between the input and a column of '{table.name}'",
            span=span_of(join),
            hint=f"e.g. ON s.id = {alias}.id",
        )
    node, lcols = _lookup_keys(left.node, lkeys, [table.schema.field(k).type for k in tkeys])
    ttl = table.connector.lookup_cache_ttl(table.context)
    out = LookupJoin(
        node,
        table,
        kind,
        tuple(lcols),
        tuple(tkeys),
        tuple(cols),
        tuple(names),
        conjoin(rest),
        cache_ttl_ms=ttl,
    )
    return Scope(out, left.columns + dim)


def _lookup_keys(node: PlanNode, keys: list[exp.Expression], types: list[pa.DataType]):
    """The input's key columns, cast to the table's key types where they differ."""
    from streamsql.expr import compile_expr

    extra, out = [], []
    for i, (e, t) in enumerate(zip(keys, types, strict=True)):
        have = compile_expr(e, node.schema).type
        if isinstance(e, exp.Column) and have == t:
            out.append(e.name)
            continue
        if common_type(have, t) is None:
            raise BindError(
                f"cannot look up {to_sql(e)} ({sql_type_name(have)}) in a "
                f"{sql_type_name(t)} column",
                span=span_of(e),
                hint="CAST it to the table column's type",
            )
        name = f"$lk{i}"
        extra.append((name, exp.Cast(this=e, to=sql_type(t))))
        out.append(name)
    return with_columns(node, extra), out
