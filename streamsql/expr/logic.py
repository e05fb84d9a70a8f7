"""Boolean logic (Kleene AND/OR/NOT) and conditionals: CASE, IF, COALESCE/IFNULL, NULLIF,
GREATEST, LEAST.

Branches that may fail at run time (a CAST of a string) are evaluated only on the rows that
reach them, so a guard in a WHEN, an AND or a COALESCE protects them as it would row by row.
GREATEST and LEAST return NULL when any argument is NULL, as Flink does.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.casts import coerce
from streamsql.expr.compare import unify
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, as_array, bool_mask, eval_where, null_of
from streamsql.expr.promote import common_type
from streamsql.types import sql_type_name


def boolean(c: Compiler, node: Node, what: str) -> Node:
    """``node`` checked to be BOOLEAN (NULL becomes a BOOLEAN NULL)."""
    c.expect(node, pt.is_boolean, what, "BOOLEAN")
    return coerce(c, node, pa.bool_())


@registry.handles(exp.And, exp.Or)
def _and_or(c: Compiler, e: exp.Connector) -> Node:
    is_and = isinstance(e, exp.And)
    word = "AND" if is_and else "OR"
    left = boolean(c, c.compile(e.this), word)
    right = boolean(c, c.compile(e.expression), word)
    f, g = left.fn, right.fn
    kernel = pc.and_kleene if is_and else pc.or_kleene
    if not right.can_fail:
        return c.make(e, lambda b, ctx: kernel(f(b, ctx), g(b, ctx)), [left, right])

    def guarded(b, ctx):
        x = f(b, ctx)
        # the right side matters only where the left does not decide alone
        undecided = pc.fill_null(x if is_and else pc.invert(x), True)
        return kernel(x, eval_where(right, b, ctx, as_array(undecided, b.num_rows)))

    return c.make(e, guarded, [left, right])


@registry.handles(exp.Not)
def _not(c: Compiler, e: exp.Not) -> Node:
    inner = boolean(c, c.compile(e.this), "NOT")
    f = inner.fn
    return c.make(e, lambda b, ctx: pc.invert(f(b, ctx)), [inner])


def result_type(c: Compiler, e: exp.Expression, nodes: list[Node], what: str) -> pa.DataType:
    """The common type of the branches of a conditional."""
    t = common_type([n.type for n in nodes])
    if t is None:
        names = ", ".join(dict.fromkeys(sql_type_name(n.type) for n in nodes))
        raise c.error(f"{what} branches have incompatible types {names}", e)
    return t


def case_node(
    c: Compiler, e: exp.Expression, conds: list[Node], values: list[Node], default: Node | None
) -> Node:
    """CASE WHEN conds[i] THEN values[i] ... ELSE default END."""
    branches = values + ([default] if default is not None else [])
    t = result_type(c, e, branches, "CASE")
    values = [coerce(c, v, t) for v in values]
    default = coerce(c, default, t) if default is not None else c.constant(e, null_of(t))
    guard = any(n.can_fail for n in [*conds, *values, default])
    names = [f"c{i}" for i in range(len(conds))]

    def evaluate(b, ctx):
        n = b.num_rows
        if not guard:
            masks = [bool_mask(k.fn(b, ctx), n) for k in conds]
            outs = [v.fn(b, ctx) for v in values] + [default.fn(b, ctx)]
            return pc.case_when(pc.make_struct(*masks, field_names=names), *outs)
        remaining = pa.repeat(pa.scalar(True), n)
        masks, outs = [], []
        for k, v in zip(conds, values, strict=True):
            hit = pc.and_(remaining, bool_mask(eval_where(k, b, ctx, remaining), n))
            masks.append(hit)
            outs.append(eval_where(v, b, ctx, hit))
            remaining = pc.and_(remaining, pc.invert(hit))
        outs.append(eval_where(default, b, ctx, remaining))
        return pc.case_when(pc.make_struct(*masks, field_names=names), *outs)

    return c.make(e, evaluate, [*conds, *values, default])


@registry.handles(exp.Case)
def _case(c: Compiler, e: exp.Case) -> Node:
    ifs = e.args.get("ifs") or []
    default = c.compile(e.args["default"]) if e.args.get("default") is not None else None
    values = [c.compile(i.args["true"]) for i in ifs]
    if e.this is not None:  # CASE x WHEN v THEN ...: compare x with every v
        operand, *whens = unify(c, e, [c.compile(e.this), *(c.compile(i.this) for i in ifs)])
        conds = []
        for w, i in zip(whens, ifs, strict=True):
            f, g = operand.fn, w.fn
            conds.append(
                c.make(i, lambda b, ctx, f=f, g=g: pc.equal(f(b, ctx), g(b, ctx)), [operand, w])
            )
    else:
        conds = [boolean(c, c.compile(i.this), "WHEN") for i in ifs]
    return case_node(c, e, conds, values, default)


@registry.handles(exp.If, names=("IF",))
def _if(c: Compiler, e: exp.If) -> Node:
    cond = boolean(c, c.compile(e.this), "IF")
    otherwise = e.args.get("false")
    default = c.compile(otherwise) if otherwise is not None else None
    return case_node(c, e, [cond], [c.compile(e.args["true"])], default)


@registry.handles(exp.Coalesce, names=("COALESCE", "IFNULL"))
def _coalesce(c: Compiler, e: exp.Coalesce) -> Node:
    nodes = [c.compile(x) for x in [e.this, *e.expressions]]
    t = result_type(c, e, nodes, "COALESCE")
    nodes = [coerce(c, n, t) for n in nodes]
    fns = [n.fn for n in nodes]
    if not any(n.can_fail for n in nodes[1:]):
        return c.make(e, lambda b, ctx: pc.coalesce(*(f(b, ctx) for f in fns)), nodes)

    def guarded(b, ctx):
        out = nodes[0].fn(b, ctx)
        for n in nodes[1:]:
            missing = as_array(pc.is_null(out), b.num_rows)
            out = pc.coalesce(out, eval_where(n, b, ctx, missing))
        return out

    return c.make(e, guarded, nodes)


@registry.handles(exp.Nullif, names=("NULLIF",))
def _nullif(c: Compiler, e: exp.Nullif) -> Node:
    a, b_ = unify(c, e, [c.compile(e.this), c.compile(e.expression)])
    f, g = a.fn, b_.fn
    null = null_of(a.type)

    def nullif(b, ctx):
        x = f(b, ctx)
        return pc.if_else(pc.fill_null(pc.equal(x, g(b, ctx)), False), null, x)

    return c.make(e, nullif, [a, b_])


@registry.handles(exp.Greatest, exp.Least, names=("GREATEST", "LEAST"))
def _extreme(c: Compiler, e: exp.Func) -> Node:
    nodes = unify(c, e, [c.compile(x) for x in [e.this, *e.expressions]])
    kernel = pc.max_element_wise if isinstance(e, exp.Greatest) else pc.min_element_wise
    fns = [n.fn for n in nodes]
    return c.make(e, lambda b, ctx: kernel(*(f(b, ctx) for f in fns), skip_nulls=False), nodes)
