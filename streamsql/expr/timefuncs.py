"""Time conversions and clocks: DATE_FORMAT, TO_TIMESTAMP, TO_TIMESTAMP_LTZ, TO_DATE,
FROM_UNIXTIME, UNIX_TIMESTAMP, CURRENT_WATERMARK, NOW, CURRENT_TIMESTAMP, LOCALTIMESTAMP,
CURRENT_DATE, CURRENT_TIME, LOCALTIME, PROCTIME.

Patterns are Java's (``yyyy-MM-dd HH:mm:ss``). Parsing functions return NULL for input that does
not match (Flink does so for TO_TIMESTAMP and TO_DATE; for UNIX_TIMESTAMP this is our choice).
Clock functions read ``EvalContext.now_ms`` once per batch and are not deterministic; the
watermark comes from ``EvalContext.watermark_ms``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import javafmt, registry
from streamsql.expr.casts import coerce
from streamsql.expr.civil import floordiv
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import EvalContext, Node, Value, lift, null_of
from streamsql.expr.promote import is_numeric, is_string
from streamsql.expr.strings import text_arg
from streamsql.expr.textformat import from_local, to_local
from streamsql.expr.textparse import DATE_RE, TIMESTAMP_RE
from streamsql.expr.vectorize import by_params

STR = pa.string()
TS3 = pa.timestamp("ms")
LTZ3 = pa.timestamp("ms", tz="UTC")
DEFAULT_FORMAT = "yyyy-MM-dd HH:mm:ss"


def _args(c: Compiler, e: exp.Anonymous, name: str, low: int, high: int) -> list[exp.Expression]:
    args = list(e.expressions)
    if not low <= len(args) <= high:
        count = f"{low}" if low == high else f"{low} to {high}"
        raise c.error(f"{name} takes {count} arguments, got {len(args)}", e)
    return args


def _pattern(c: Compiler, e: exp.Expression | None, name: str, parse: bool) -> Node | None:
    """A format argument; a constant one is checked now (unsupported letters)."""
    if e is None:
        return None
    node = text_arg(c, e, name)
    if node.is_const and node.const.is_valid:
        try:
            (javafmt.parse_regex if parse else javafmt.formatter)(node.const.as_py())
        except javafmt.PatternError as err:
            raise c.error(f"{name}: {err}", e) from err
    return node


def _parse_with(text: pa.Array, fmt: str | None, unit: str = "ms") -> pa.Array:
    if fmt is None:
        return javafmt.parse(pc.utf8_trim_whitespace(text), TIMESTAMP_RE, unit)
    return javafmt.parser(fmt, unit)(text)


def _parse_lifted(text: Value, fmt: str) -> Value:
    return lift(lambda x: _parse_with(x, fmt))(text)


def _parser_node(c: Compiler, e: exp.Expression, s: Node, fmt: Node | None, post) -> Node:
    """A node parsing string ``s`` with ``fmt`` (None: the lenient default) and then ``post``."""
    f = s.fn
    if fmt is None:
        run = lift(lambda x: _parse_with(x, None))
        return c.make(e, lambda b, ctx: post(run(f(b, ctx)), ctx), [s], contextual=True)
    g = fmt.fn
    return c.make(
        e,
        lambda b, ctx: post(by_params(_parse_lifted, [f(b, ctx)], [g(b, ctx)], TS3), ctx),
        [s, fmt],
        contextual=True,
    )


@registry.function("DATE_FORMAT")
def _date_format(c: Compiler, e: exp.Anonymous) -> Node:
    value, pattern = _args(c, e, "DATE_FORMAT", 2, 2)
    node = c.compile(value)
    t = node.type
    c.expect(
        node,
        lambda t: pt.is_timestamp(t) or pt.is_date(t) or is_string(t),
        "DATE_FORMAT",
        "a TIMESTAMP or STRING",
    )
    if is_string(t) or pt.is_null(t):
        node = _parser_node(c, value, coerce(c, node, STR), None, lambda v, ctx: v)
    elif pt.is_date(t):
        node = coerce(c, node, TS3)
    t = node.type
    fmt = _pattern(c, pattern, "DATE_FORMAT", parse=False)
    f, g = node.fn, fmt.fn

    def render(v: Value, p: str) -> Value:
        return lift(javafmt.formatter(p))(v)

    def run(b, ctx):
        v = f(b, ctx)
        v = to_local(v, ctx) if t.tz else v
        return by_params(render, [v], [g(b, ctx)], STR)

    return c.make(e, run, [node, fmt], contextual=bool(t.tz))


@registry.function("TO_TIMESTAMP")
def _to_timestamp(c: Compiler, e: exp.Anonymous) -> Node:
    args = _args(c, e, "TO_TIMESTAMP", 1, 2)
    s = text_arg(c, args[0], "TO_TIMESTAMP")
    fmt = _pattern(c, args[1] if len(args) > 1 else None, "TO_TIMESTAMP", parse=True)
    return _parser_node(c, e, s, fmt, lambda v, ctx: v)


@registry.function("TO_DATE")
def _to_date(c: Compiler, e: exp.Anonymous) -> Node:
    args = _args(c, e, "TO_DATE", 1, 2)
    node = c.compile(args[0])
    if pt.is_timestamp(node.type):
        return coerce(c, node, pa.date32())
    s = text_arg(c, args[0], "TO_DATE")
    if len(args) == 1:
        f = s.fn
        run = lift(
            lambda x: pc.cast(javafmt.parse(pc.utf8_trim_whitespace(x), DATE_RE, "s"), pa.date32())
        )
        return c.make(e, lambda b, ctx: run(f(b, ctx)), [s])
    fmt = _pattern(c, args[1], "TO_DATE", parse=True)
    return _parser_node(c, e, s, fmt, lambda v, ctx: pc.cast(v, pa.date32()))


@registry.function("TO_TIMESTAMP_LTZ")
def _to_timestamp_ltz(c: Compiler, e: exp.Anonymous) -> Node:
    args = _args(c, e, "TO_TIMESTAMP_LTZ", 1, 2)
    node = c.compile(args[0])
    c.expect(node, is_numeric, "TO_TIMESTAMP_LTZ", "a numeric epoch")
    precision = 3
    if len(args) > 1:
        p = c.compile(args[1])
        if not p.is_const or p.const.as_py() not in (0, 3):
            raise c.error(
                "TO_TIMESTAMP_LTZ precision must be 0 (seconds) or 3 (milliseconds)", args[1]
            )
        precision = p.const.as_py()
    scale = 1000 if precision == 0 else 1
    node = coerce(
        c,
        node,
        pa.float64() if pt.is_floating(node.type) or pt.is_decimal(node.type) else pa.int64(),
    )
    f = node.fn

    def convert(b, ctx):
        v = f(b, ctx)
        millis = pc.multiply(v, scale)
        if pt.is_floating(v.type):
            millis = pc.cast(pc.floor(millis), pa.int64(), safe=False)
        return pc.cast(millis, LTZ3)

    return c.make(e, convert, [node])


@registry.function("FROM_UNIXTIME")
def _from_unixtime(c: Compiler, e: exp.Anonymous) -> Node:
    args = _args(c, e, "FROM_UNIXTIME", 1, 2)
    node = c.compile(args[0])
    c.expect(node, pt.is_integer, "FROM_UNIXTIME", "integer epoch seconds")
    node = coerce(c, node, pa.int64())
    fmt = (
        _pattern(c, args[1], "FROM_UNIXTIME", parse=False)
        if len(args) > 1
        else c.constant(e, pa.scalar(DEFAULT_FORMAT))
    )
    f, g = node.fn, fmt.fn

    def run(b, ctx):
        wall = lift(lambda v: to_local(pc.cast(pc.multiply(v, 1000), LTZ3), ctx))(f(b, ctx))
        return by_params(lambda v, p: lift(javafmt.formatter(p))(v), [wall], [g(b, ctx)], STR)

    return c.make(e, run, [node, fmt], contextual=True)


@registry.function("UNIX_TIMESTAMP")
def _unix_timestamp(c: Compiler, e: exp.Anonymous) -> Node:
    args = _args(c, e, "UNIX_TIMESTAMP", 0, 2)
    if not args:
        return c.make(
            e,
            lambda b, ctx: pa.scalar(ctx.current_ms() // 1000, pa.int64()),
            deterministic=False,
            contextual=True,
        )
    s = text_arg(c, args[0], "UNIX_TIMESTAMP")
    fmt = (
        _pattern(c, args[1], "UNIX_TIMESTAMP", parse=True)
        if len(args) > 1
        else c.constant(e, pa.scalar(DEFAULT_FORMAT))
    )

    def seconds(v: Value, ctx: EvalContext) -> Value:
        return lift(lambda x: floordiv(pc.cast(from_local(x, ctx), pa.int64()), 1000))(v)

    return _parser_node(c, e, s, fmt, seconds)


@registry.function("CURRENT_WATERMARK")
def _current_watermark(c: Compiler, e: exp.Anonymous) -> Node:
    (arg,) = _args(c, e, "CURRENT_WATERMARK", 1, 1)
    if not isinstance(arg, exp.Column):
        raise c.error("CURRENT_WATERMARK takes the rowtime column", arg)
    node = c.compile(arg)
    c.expect(node, pt.is_timestamp, "CURRENT_WATERMARK", "a TIMESTAMP column")
    out = pa.timestamp("ms", tz=getattr(node.type, "tz", None))

    def watermark(b, ctx: EvalContext) -> Value:
        return pa.scalar(ctx.watermark_ms, out) if ctx.watermark_ms is not None else null_of(out)

    # the column's values are not read: only its type
    return c.make(e, watermark, deterministic=False, contextual=True)


def _clock(c: Compiler, e: exp.Expression, kind: str) -> Node:
    def now(b, ctx: EvalContext) -> Value:
        instant = pa.scalar(ctx.current_ms(), LTZ3)
        if kind == "ltz":
            return instant
        wall = to_local(pa.array([instant]), ctx)
        match kind:
            case "timestamp":
                return wall[0]
            case "date":
                return pc.cast(wall, pa.date32())[0]
        return pc.cast(wall, pa.time32("ms"))[0]

    return c.make(e, now, deterministic=False, contextual=True)


@registry.handles(exp.CurrentTimestamp, names=("CURRENT_TIMESTAMP",))
@registry.function("NOW", "PROCTIME", "CURRENT_ROW_TIMESTAMP", "CURRENT_TIMESTAMP")
def _now(c: Compiler, e: exp.Expression) -> Node:
    return _clock(c, e, "ltz")


@registry.function("LOCALTIMESTAMP")
def _localtimestamp(c: Compiler, e: exp.Expression) -> Node:
    return _clock(c, e, "timestamp")


@registry.handles(exp.CurrentDate, names=("CURRENT_DATE",))
@registry.function("CURRENT_DATE")
def _current_date(c: Compiler, e: exp.Expression) -> Node:
    return _clock(c, e, "date")


@registry.handles(exp.CurrentTime, names=("CURRENT_TIME", "LOCALTIME"))
@registry.function("CURRENT_TIME", "LOCALTIME")
def _current_time(c: Compiler, e: exp.Expression) -> Node:
    return _clock(c, e, "time")
