"""Comparisons: = <> < <= > >=, IS [NOT] DISTINCT FROM, IS NULL/TRUE/FALSE, IN, BETWEEN.

Operands are brought to a common type first (numbers widen, timestamps take the finer unit, a
DATE meets a TIMESTAMP as a TIMESTAMP, a string constant meets a temporal value as that
temporal type); comparing a string with a number is a BindError, as in Flink. Results follow
SQL's three-valued logic: a NULL operand gives NULL.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.casts import coerce
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, Value, lift, null_of
from streamsql.expr.promote import common_type, is_string
from streamsql.types import sql_type_name

_KERNELS = {
    exp.EQ: pc.equal,
    exp.NEQ: pc.not_equal,
    exp.GT: pc.greater,
    exp.GTE: pc.greater_equal,
    exp.LT: pc.less,
    exp.LTE: pc.less_equal,
}
_NULL_BOOL = null_of(pa.bool_())


def _temporal(t: pa.DataType) -> bool:
    return pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t)


def unify(c: Compiler, e: exp.Expression, nodes: list[Node], what: str = "compare") -> list[Node]:
    """``nodes`` converted to their common type; BindError naming the types if there is none."""
    types = [n.type for n in nodes]
    temporals = [t for t in types if _temporal(t)]
    if temporals:
        # a string constant next to a temporal value reads as that temporal type
        target = common_type(temporals)
        if target is not None:
            nodes = [coerce(c, n, target) if is_string(n.type) and n.is_const else n for n in nodes]
            types = [n.type for n in nodes]
    target = common_type(types)
    if target is None or (pt.is_nested(target) and what != "compare for equality"):
        names = " and ".join(dict.fromkeys(sql_type_name(t) for t in types if not pt.is_null(t)))
        raise c.error(f"cannot {what} {names}", e)
    if pt.is_null(target):
        target = pa.bool_() if what == "compare" else target
    return [coerce(c, n, target) for n in nodes]


@registry.handles(*_KERNELS)
def _comparison(c: Compiler, e: exp.Binary) -> Node:
    left, right = unify(c, e, [c.compile(e.this), c.compile(e.expression)])
    kernel = _KERNELS[type(e)]
    f, g = left.fn, right.fn
    return c.make(e, lambda b, ctx: kernel(f(b, ctx), g(b, ctx)), [left, right])


def _not_distinct(x: Value, y: Value) -> Value:
    both_null = pc.and_(pc.is_null(x), pc.is_null(y))
    return pc.or_(pc.fill_null(pc.equal(x, y), False), both_null)


@registry.handles(exp.NullSafeEQ, exp.NullSafeNEQ)
def _distinct(c: Compiler, e: exp.Binary) -> Node:
    left, right = unify(c, e, [c.compile(e.this), c.compile(e.expression)])
    f, g = left.fn, right.fn
    if isinstance(e, exp.NullSafeEQ):
        return c.make(e, lambda b, ctx: _not_distinct(f(b, ctx), g(b, ctx)), [left, right])
    return c.make(e, lambda b, ctx: pc.invert(_not_distinct(f(b, ctx), g(b, ctx))), [left, right])


@registry.handles(exp.Is)
def _is(c: Compiler, e: exp.Is) -> Node:
    inner = c.compile(e.this)
    f = inner.fn
    match e.expression:
        case exp.Null():
            return c.make(e, lambda b, ctx: pc.is_null(f(b, ctx)), [inner])
        case exp.Boolean(this=True):
            c.expect(inner, pt.is_boolean, "IS TRUE", "BOOLEAN")
            inner = coerce(c, inner, pa.bool_())
            f = inner.fn
            return c.make(e, lambda b, ctx: pc.fill_null(f(b, ctx), False), [inner])
        case exp.Boolean():
            c.expect(inner, pt.is_boolean, "IS FALSE", "BOOLEAN")
            inner = coerce(c, inner, pa.bool_())
            f = inner.fn
            return c.make(e, lambda b, ctx: pc.fill_null(pc.invert(f(b, ctx)), False), [inner])
    raise c.error("unsupported IS test", e)


@registry.handles(exp.In)
def _in(c: Compiler, e: exp.In) -> Node:
    if e.args.get("query") is not None or e.args.get("unnest") is not None:
        raise c.error("IN (subquery) is not supported in expressions", e)
    needle, *items = unify(c, e, [c.compile(e.this), *(c.compile(x) for x in e.expressions)])
    f = needle.fn
    if all(i.is_const for i in items):
        values = [i.const for i in items]
        has_null = any(not v.is_valid for v in values)
        value_set = pa.array([v.as_py() for v in values if v.is_valid], needle.type)

        @lift
        def member(x: pa.Array) -> pa.Array:
            found = pc.is_in(x, value_set=value_set)
            found = pc.if_else(pc.is_null(x), _NULL_BOOL, found)
            return pc.if_else(found, True, _NULL_BOOL) if has_null else found

        return c.make(e, lambda b, ctx: member(f(b, ctx)), [needle, *items])
    fns = [i.fn for i in items]

    def any_equal(b, ctx):
        x = f(b, ctx)
        out = pc.equal(x, fns[0](b, ctx))
        for g in fns[1:]:
            out = pc.or_kleene(out, pc.equal(x, g(b, ctx)))
        return out

    return c.make(e, any_equal, [needle, *items])


@registry.handles(exp.Between)
def _between(c: Compiler, e: exp.Between) -> Node:
    x, lo, hi = unify(
        c, e, [c.compile(e.this), c.compile(e.args["low"]), c.compile(e.args["high"])]
    )
    f, g, h = x.fn, lo.fn, hi.fn
    symmetric = bool(e.args.get("symmetric"))

    def between(b, ctx):
        v, low, high = f(b, ctx), g(b, ctx), h(b, ctx)
        inside = pc.and_kleene(pc.greater_equal(v, low), pc.less_equal(v, high))
        if symmetric:
            swapped = pc.and_kleene(pc.greater_equal(v, high), pc.less_equal(v, low))
            inside = pc.or_kleene(inside, swapped)
        return inside

    return c.make(e, between, [x, lo, hi])
