"""Math functions: ABS, CEIL/CEILING, FLOOR, ROUND, TRUNCATE, POWER, SQRT, EXP, LN, LOG10, LOG2,
LOG, SIGN, PI, E, RAND, RAND_INTEGER and the trigonometric functions.

ROUND rounds half away from zero (Java's BigDecimal HALF_UP, as Flink); ROUND and TRUNCATE of a
DECIMAL keep min(scale, digits) fraction digits. Functions of real numbers return DOUBLE and
follow Java for bad input (SQRT(-1) is NaN, LN(0) is -Infinity). RAND() and RAND_INTEGER(n)
are not deterministic; with a seed they repeat the same sequence for each compiled expression.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.casts import coerce
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, as_array
from streamsql.expr.promote import decimal, is_numeric
from streamsql.expr.temporal import round_to_unit

DOUBLE = pa.float64()


def number_arg(c: Compiler, e: exp.Expression, what: str) -> Node:
    node = c.compile(e)
    c.expect(node, is_numeric, what, "a number")
    return coerce(c, node, pa.int32()) if pt.is_null(node.type) else node


def _apply(c: Compiler, e: exp.Expression, kernel, nodes: list[Node], **flags) -> Node:
    fns = [n.fn for n in nodes]
    return c.make(e, lambda b, ctx: kernel(*(f(b, ctx) for f in fns)), nodes, **flags)


def _double(c: Compiler, e: exp.Expression, what: str) -> Node:
    return coerce(c, number_arg(c, e, what), DOUBLE)


@registry.handles(exp.Abs, names=("ABS",))
def _abs(c: Compiler, e: exp.Abs) -> Node:
    return _apply(c, e, pc.abs, [number_arg(c, e.this, "ABS")])


@registry.handles(exp.Ceil, exp.Floor, names=("CEIL", "CEILING", "FLOOR"))
def _ceil_floor(c: Compiler, e: exp.Func) -> Node:
    ceil = isinstance(e, exp.Ceil)
    if e.args.get("to") is not None:
        return round_to_unit(c, e, c.compile(e.this), e.args["to"].name.upper(), ceil)
    node = number_arg(c, e.this, "CEIL" if ceil else "FLOOR")
    t = node.type
    if pt.is_integer(t):
        return node
    kernel = pc.ceil if ceil else pc.floor
    if pt.is_decimal(t):
        out = decimal(t.precision - t.scale + 1, 0)
        return _apply(c, e, lambda v: pc.cast(kernel(v), out), [node])
    return _apply(c, e, kernel, [node])


def _rounding(c: Compiler, e: exp.Func, mode: str, name: str) -> Node:
    node = number_arg(c, e.this, name)
    digits_expr = e.args.get("decimals")
    digits = 0
    if digits_expr is not None:
        d = c.compile(digits_expr)
        if not d.is_const or not pt.is_integer(d.type):
            raise c.error(f"{name} expects a constant integer number of digits", digits_expr)
        digits = d.const.as_py()
    t = node.type
    if pt.is_integer(t) and digits >= 0:
        return node

    def run(v):
        return pc.round(v, digits, round_mode=mode)

    if pt.is_decimal(t):
        scale = max(0, min(t.scale, digits))
        out = decimal(t.precision - t.scale + scale + 1, scale)
        return _apply(c, e, lambda v: pc.cast(run(v), out), [node])
    return _apply(c, e, run, [node])


@registry.handles(exp.Round, names=("ROUND",))
def _round(c: Compiler, e: exp.Round) -> Node:
    return _rounding(c, e, "half_towards_infinity", "ROUND")


@registry.handles(exp.Trunc, names=("TRUNCATE",))
def _truncate(c: Compiler, e: exp.Trunc) -> Node:
    return _rounding(c, e, "towards_zero", "TRUNCATE")


@registry.handles(exp.Pow, names=("POWER", "POW"))
def _power(c: Compiler, e: exp.Pow) -> Node:
    return _apply(c, e, pc.power, [_double(c, e.this, "POWER"), _double(c, e.expression, "POWER")])


_UNARY_DOUBLE = {
    exp.Sqrt: ("SQRT", pc.sqrt),
    exp.Exp: ("EXP", pc.exp),
    exp.Ln: ("LN", pc.ln),
    exp.Sin: ("SIN", pc.sin),
    exp.Cos: ("COS", pc.cos),
    exp.Tan: ("TAN", pc.tan),
    exp.Asin: ("ASIN", pc.asin),
    exp.Acos: ("ACOS", pc.acos),
    exp.Atan: ("ATAN", pc.atan),
    exp.Cot: ("COT", lambda v: pc.divide(1.0, pc.tan(v))),
    exp.Degrees: ("DEGREES", lambda v: pc.multiply(v, 180.0 / math.pi)),
    exp.Radians: ("RADIANS", lambda v: pc.multiply(v, math.pi / 180.0)),
}


@registry.handles(*_UNARY_DOUBLE, names=tuple(name for name, _ in _UNARY_DOUBLE.values()))
def _unary_double(c: Compiler, e: exp.Func) -> Node:
    name, kernel = _UNARY_DOUBLE[type(e)]
    return _apply(c, e, kernel, [_double(c, e.this, name)])


@registry.handles(exp.Atan2, names=("ATAN2",))
def _atan2(c: Compiler, e: exp.Atan2) -> Node:
    return _apply(c, e, pc.atan2, [_double(c, e.this, "ATAN2"), _double(c, e.expression, "ATAN2")])


@registry.handles(exp.Log, names=("LOG", "LOG10", "LOG2"))
def _log(c: Compiler, e: exp.Log) -> Node:
    if e.expression is None:  # LOG(x) is the natural logarithm
        return _apply(c, e, pc.ln, [_double(c, e.this, "LOG")])
    base, x = _double(c, e.this, "LOG"), _double(c, e.expression, "LOG")
    if base.is_const and base.const.as_py() in (2.0, 10.0):
        kernel = pc.log2 if base.const.as_py() == 2.0 else pc.log10
        return _apply(c, e, kernel, [x])
    return _apply(c, e, lambda b_, v: pc.divide(pc.ln(v), pc.ln(b_)), [base, x])


@registry.handles(exp.Sign, names=("SIGN",))
def _sign(c: Compiler, e: exp.Sign) -> Node:
    node = number_arg(c, e.this, "SIGN")
    t = node.type
    if pt.is_decimal(t):
        out = decimal(max(t.precision, t.scale + 1), t.scale)  # room for the 1
        return _apply(c, e, lambda v: pc.cast(pc.sign(pc.cast(v, DOUBLE)), out), [node])
    return _apply(c, e, lambda v: pc.cast(pc.sign(v), t), [node])


@registry.handles(exp.Pi, names=("PI",))
def _pi(c: Compiler, e: exp.Pi) -> Node:
    return c.constant(e, pa.scalar(math.pi, DOUBLE))


@registry.function("E")
def _e(c: Compiler, e: exp.Anonymous) -> Node:
    return c.constant(e, pa.scalar(math.e, DOUBLE))


def _seed(c: Compiler, e: exp.Expression | None) -> int | None:
    if e is None:
        return None
    node = c.compile(e)
    if not node.is_const or not pt.is_integer(node.type):
        raise c.error("the seed must be a constant integer", e)
    return node.const.as_py()


@registry.handles(exp.Rand, names=("RAND",))
def _rand(c: Compiler, e: exp.Rand) -> Node:
    seed = _seed(c, e.this)
    rng = np.random.default_rng(seed)
    return c.make(
        e,
        lambda b, ctx: pa.array(rng.random(b.num_rows)),
        deterministic=seed is not None,
        fold=False,
    )


@registry.function("RAND_INTEGER")
def _rand_integer(c: Compiler, e: exp.Anonymous) -> Node:
    args = list(e.expressions)
    if len(args) not in (1, 2):
        raise c.error("RAND_INTEGER takes (bound) or (seed, bound)", e)
    seed = _seed(c, args[0]) if len(args) == 2 else None
    bound = number_arg(c, args[-1], "RAND_INTEGER")
    c.expect(bound, pt.is_integer, "RAND_INTEGER", "an integer bound")
    bound = coerce(c, bound, pa.int64())
    rng = np.random.default_rng(seed)
    f = bound.fn

    def draw(b, ctx):
        n = b.num_rows
        limits = as_array(f(b, ctx), n).to_numpy(zero_copy_only=False).astype(float)
        values = np.floor(rng.random(n) * limits)
        return pa.array(values, mask=~np.isfinite(values) | ~(limits > 0)).cast(pa.int32())

    return c.make(e, draw, [bound], deterministic=seed is not None, fold=False)
