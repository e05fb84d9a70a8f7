"""Arithmetic: ``+ - * / %``, MOD, unary minus, and timestamp/date +/- INTERVAL.

Flink semantics kept here: INT / INT is an integer division truncating toward zero; integer
overflow wraps (unchecked kernels); DECIMAL results take Flink's precision/scale rules and round
HALF_UP; ``%`` and MOD take the sign of the dividend (Java). Division or modulo by zero gives NULL
for every numeric type (a documented choice: the job does not fail, DuckDB does the same).
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.casts import coerce
from streamsql.expr.civil import add_months
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, Value, is_scalar, null_of
from streamsql.expr.promote import as_decimal, common_numeric, decimal, is_numeric
from streamsql.types import sql_type_name

decimal_zero = Decimal(0)
_SYMBOL = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}
_KERNEL = {"+": pc.add, "-": pc.subtract, "*": pc.multiply, "/": pc.divide, "%": pc.remainder}


def decimal_result(op: str, a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """Flink's result type of a DECIMAL operation (after integers became DECIMAL(p, 0))."""
    p1, s1, p2, s2 = a.precision, a.scale, b.precision, b.scale
    match op:
        case "+" | "-":
            scale = max(s1, s2)
            return decimal(max(p1 - s1, p2 - s2) + scale + 1, scale)
        case "*":
            return decimal(p1 + p2, s1 + s2)
        case "/":
            scale = max(6, s1 + p2 + 1)
            return decimal(p1 - s1 + s2 + scale, scale)
        case _:
            scale = max(s1, s2)
            return decimal(min(p1 - s1, p2 - s2) + scale, scale)


def _nonzero(v: Value) -> Value:
    """``v`` with zeros replaced by NULL (so x / 0 and x % 0 are NULL)."""
    zero = pa.scalar(decimal_zero if pt.is_decimal(v.type) else 0, v.type)
    if is_scalar(v):
        return null_of(v.type) if v.is_valid and v == zero else v
    return pc.if_else(pc.equal(v, zero), null_of(v.type), v)


def _decimal_op(op: str, a: pa.DataType, b: pa.DataType, out: pa.DataType):
    wide_a = pa.decimal256(a.precision, a.scale)
    wide_b = pa.decimal256(b.precision, b.scale)
    if op == "/":
        # scale the dividend so Arrow keeps one digit beyond the result scale, then round
        arrow_scale = max(4, a.scale + b.precision - b.scale + 1)
        extra = max(0, out.scale + 1 - arrow_scale)
        wide_a = pa.decimal256(min(76, a.precision + extra), a.scale + extra)
    kernel = _KERNEL[op]

    def run(x: Value, y: Value) -> Value:
        if op in "/%":
            y = _nonzero(y)
        r = kernel(pc.cast(x, wide_a), pc.cast(y, wide_b))
        if r.type.scale > out.scale:
            r = pc.round(r, out.scale, round_mode="half_towards_infinity")
        return pc.cast(r, out)

    return run


def numeric(c: Compiler, e: exp.Expression, op: str, left: Node, right: Node) -> Node:
    """A numeric binary operation with promotion."""
    lt, rt = left.type, right.type
    if pt.is_null(lt) and pt.is_null(rt):
        return c.constant(e, null_of(pa.int32()))
    lt = rt if pt.is_null(lt) else lt
    rt = lt if pt.is_null(rt) else rt
    common = common_numeric([lt, rt])
    if pt.is_decimal(common):
        a, b = as_decimal(lt), as_decimal(rt)
        out = decimal_result(op, a, b)
        left, right = coerce(c, left, a), coerce(c, right, b)
        run = _decimal_op(op, a, b, out)
    else:
        left, right = coerce(c, left, common), coerce(c, right, common)
        kernel = _KERNEL[op]
        run = (lambda x, y: kernel(x, _nonzero(y))) if op in "/%" else kernel
    f, g = left.fn, right.fn
    return c.make(e, lambda b, ctx: run(f(b, ctx), g(b, ctx)), [left, right])


def temporal(c: Compiler, e: exp.Expression, op: str, left: Node, right: Node) -> Node | None:
    """Timestamp/date +/- interval (and interval +/- interval); None if not temporal."""
    lt, rt = left.type, right.type
    if (
        op == "+"
        and (pt.is_duration(lt) or pt.is_interval(lt))
        and (pt.is_timestamp(rt) or pt.is_date(rt))
    ):
        left, right, lt, rt = right, left, rt, lt
    if op not in "+-":
        return None
    f, g = left.fn, right.fn
    sign = 1 if op == "+" else -1
    if (pt.is_timestamp(lt) or pt.is_date(lt)) and pt.is_interval(rt):
        if not right.is_const:
            raise c.error("a YEAR/MONTH interval must be a constant", right.expr)
        if not right.const.is_valid:
            return c.constant(e, null_of(lt))
        n = pa.scalar(right.const.as_py().months * sign, pa.int64())
        return c.make(e, lambda b, ctx: add_months(f(b, ctx), n), [left, right])
    if pt.is_timestamp(lt) and pt.is_duration(rt):
        kernel = pc.add if op == "+" else pc.subtract
        return c.make(e, lambda b, ctx: kernel(f(b, ctx), g(b, ctx)), [left, right])
    if pt.is_date(lt) and pt.is_duration(rt):
        kernel = pc.add if op == "+" else pc.subtract

        def on_date(b, ctx):
            moved = kernel(pc.cast(f(b, ctx), pa.timestamp("ms")), g(b, ctx))
            return pc.cast(moved, pa.date32())

        return c.make(e, on_date, [left, right])
    if pt.is_duration(lt) and pt.is_duration(rt):
        kernel = pc.add if op == "+" else pc.subtract
        return c.make(e, lambda b, ctx: kernel(f(b, ctx), g(b, ctx)), [left, right])
    return None


@registry.handles(exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, names=("MOD",))
def _binary(c: Compiler, e: exp.Binary) -> Node:
    op = _SYMBOL[type(e)]
    left, right = c.compile(e.this), c.compile(e.expression)
    lt, rt = left.type, right.type
    node = temporal(c, e, op, left, right)
    if node is not None:
        return node
    if all(is_numeric(t) or pt.is_null(t) for t in (lt, rt)):
        return numeric(c, e, op, left, right)
    raise c.error(f"cannot apply '{op}' to {sql_type_name(lt)} and {sql_type_name(rt)}", e)


@registry.handles(exp.Neg)
def _neg(c: Compiler, e: exp.Neg) -> Node:
    inner = c.compile(e.this)
    t = inner.type
    if pt.is_null(t):
        return c.constant(e, null_of(pa.int32()))
    if not (is_numeric(t) or pt.is_duration(t) or pt.is_interval(t)):
        raise c.error(f"cannot apply unary '-' to {sql_type_name(t)}", e)
    if (
        inner.is_const
        and isinstance(e.this, exp.Literal)
        and pt.is_int64(t)
        and inner.const.as_py() == 2**31
    ):
        return c.constant(e, pa.scalar(-(2**31), pa.int32()))  # -2147483648 is an INT literal
    if pt.is_interval(t):
        months = inner.const.as_py().months if inner.is_const else None
        if months is None:
            raise c.error("cannot negate a non-constant INTERVAL", e)
        return c.constant(e, pa.scalar((-months, 0, 0), pa.month_day_nano_interval()))
    f = inner.fn
    return c.make(e, lambda b, ctx: pc.negate(f(b, ctx)), [inner])
