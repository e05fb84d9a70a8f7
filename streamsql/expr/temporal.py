"""Date and time arithmetic on values: EXTRACT and YEAR()..SECOND(), FLOOR/CEIL(ts TO unit),
DATE_TRUNC, TIMESTAMPADD, TIMESTAMPDIFF.

Fields of a TIMESTAMP_LTZ are read in the session time zone. Flink (Calcite) conventions: DOW
and DAYOFWEEK count Sunday=1..Saturday=7, WEEK is the ISO week, MILLISECOND is the millisecond
of the minute (seconds * 1000 + millis), EPOCH is whole seconds since 1970, weeks for FLOOR/CEIL
start on Sunday, every field is BIGINT and TIMESTAMPDIFF is INT.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.casts import coerce
from streamsql.expr.civil import PER_SECOND, add_months, floordiv, i64, months_between
from streamsql.expr.compare import unify
from streamsql.expr.compiler import Compiler
from streamsql.expr.intervals import UNIT_MONTHS, UNIT_MS, unit_name
from streamsql.expr.node import EvalContext, Node, Value, lift
from streamsql.expr.textformat import from_local, to_local
from streamsql.types import sql_type_name

BIGINT = pa.int64()
_TIME_OF_DAY = {"HOUR", "MINUTE", "SECOND", "MILLISECOND", "MICROSECOND"}
#: function class -> (SQL name, EXTRACT unit)
_FIELD_CLASSES = {
    exp.Year: ("YEAR", "YEAR"),
    exp.Quarter: ("QUARTER", "QUARTER"),
    exp.Month: ("MONTH", "MONTH"),
    exp.Week: ("WEEK", "WEEK"),
    exp.DayOfMonth: ("DAYOFMONTH", "DAY"),
    exp.DayOfWeek: ("DAYOFWEEK", "DOW"),
    exp.DayOfYear: ("DAYOFYEAR", "DOY"),
    exp.Hour: ("HOUR", "HOUR"),
    exp.Minute: ("MINUTE", "MINUTE"),
    exp.Second: ("SECOND", "SECOND"),
}
_UNITS = _TIME_OF_DAY | {"EPOCH", "WEEK", "DOW", "ISODOW", "DOY", "YEAR", "QUARTER", "MONTH", "DAY"}
_ALIASES = {"DAYOFWEEK": "DOW", "DAYOFYEAR": "DOY", "DAYOFMONTH": "DAY", "DAYS": "DAY"}


def local(v: Value, t: pa.DataType, ctx: EvalContext) -> Value:
    """Wall-clock time of ``v``: LTZ values move to the session time zone."""
    return to_local(v, ctx) if pt.is_timestamp(t) and t.tz else v


def field(v: pa.Array, unit: str) -> pa.Array:
    """One field of naive timestamps, dates or times, as BIGINT."""
    match unit:
        case "YEAR" | "QUARTER" | "MONTH" | "DAY" | "HOUR" | "MINUTE" | "SECOND":
            return i64(getattr(pc, unit.lower())(v))
        case "WEEK":
            return i64(pc.iso_week(v))
        case "DOW":
            return i64(pc.day_of_week(v, count_from_zero=False, week_start=7))
        case "ISODOW":
            return i64(pc.day_of_week(v, count_from_zero=False, week_start=1))
        case "DOY":
            return i64(pc.day_of_year(v))
        case "MILLISECOND":
            return pc.add(pc.multiply(i64(pc.second(v)), 1000), i64(pc.millisecond(v)))
        case "MICROSECOND":
            ms = pc.add(pc.multiply(i64(pc.second(v)), 1000), i64(pc.millisecond(v)))
            return pc.add(pc.multiply(ms, 1000), i64(pc.microsecond(v)))
    raise ValueError(unit)


def epoch_seconds(v: pa.Array, t: pa.DataType) -> pa.Array:
    if pt.is_date(t):
        return pc.multiply(i64(pc.cast(v, pa.int32())), 86_400)
    return floordiv(pc.cast(v, BIGINT), PER_SECOND[t.unit])


def extract_node(c: Compiler, e: exp.Expression, unit: str, arg: exp.Expression) -> Node:
    unit = _ALIASES.get(unit, unit)
    node = c.compile(arg)
    t = node.type
    if pt.is_null(t):
        return c.constant(e, pa.scalar(None, BIGINT))
    ok = (
        pt.is_timestamp(t)
        or (pt.is_date(t) and unit not in _TIME_OF_DAY)
        or (pt.is_time(t) and unit in _TIME_OF_DAY)
    )
    if unit == "EPOCH":
        ok = pt.is_timestamp(t) or pt.is_date(t)
    if unit not in _UNITS:
        raise c.error(f"unknown time unit {unit}", e)
    if not ok:
        raise c.error(f"cannot extract {unit} from {sql_type_name(t)}", e)
    f = node.fn
    if unit == "EPOCH":
        get = lift(lambda v: epoch_seconds(v, t))
        return c.make(e, lambda b, ctx: get(f(b, ctx)), [node])
    get = lift(lambda v: field(v, unit))
    return c.make(
        e,
        lambda b, ctx: get(local(f(b, ctx), t, ctx)),
        [node],
        contextual=bool(getattr(t, "tz", None)),
    )


@registry.handles(exp.Extract, names=("EXTRACT",))
def _extract(c: Compiler, e: exp.Extract) -> Node:
    return extract_node(c, e, e.this.name.upper(), e.expression)


@registry.handles(*_FIELD_CLASSES, names=tuple(name for name, _ in _FIELD_CLASSES.values()))
def _field_function(c: Compiler, e: exp.Func) -> Node:
    return extract_node(c, e, _FIELD_CLASSES[type(e)][1], e.this)


_FLOOR_UNITS = {
    "MILLISECOND": "millisecond",
    "SECOND": "second",
    "MINUTE": "minute",
    "HOUR": "hour",
    "DAY": "day",
    "WEEK": "week",
    "MONTH": "month",
    "QUARTER": "quarter",
    "YEAR": "year",
}


def round_to_unit(c: Compiler, e: exp.Expression, node: Node, unit: str | None, ceil: bool) -> Node:
    """FLOOR/CEIL of a timestamp or date to a calendar unit (weeks start on Sunday)."""
    if unit not in _FLOOR_UNITS:
        raise c.error(f"unknown time unit {unit}", e)
    t = node.type
    if not (pt.is_timestamp(t) or pt.is_date(t)):
        raise c.error(
            f"cannot apply {'CEIL' if ceil else 'FLOOR'} TO {unit} to {sql_type_name(t)}", e
        )
    kernel = pc.ceil_temporal if ceil else pc.floor_temporal
    arrow_unit = _FLOOR_UNITS[unit]
    f = node.fn

    def rounded(v: pa.Array) -> pa.Array:
        return kernel(v, unit=arrow_unit, week_starts_monday=False)

    run = lift(rounded)
    if pt.is_timestamp(t) and t.tz:
        return c.make(
            e,
            lambda b, ctx: from_local(run(to_local(f(b, ctx), ctx)), ctx),
            [node],
            contextual=True,
        )
    return c.make(e, lambda b, ctx: run(f(b, ctx)), [node])


@registry.handles(exp.DateTrunc, names=("DATE_TRUNC",))
def _date_trunc(c: Compiler, e: exp.DateTrunc) -> Node:
    unit = e.args.get("unit")
    name = unit.name.upper() if unit is not None else None
    return round_to_unit(c, e, c.compile(e.this), name, ceil=False)


def _unit_arg(c: Compiler, e: exp.Expression, arg: exp.Expression) -> str:
    text = arg.name.upper() if isinstance(arg, (exp.Column, exp.Var, exp.Literal)) else ""
    text = text.removeprefix("SQL_TSI_")
    name = unit_name(text) or ("MILLISECOND" if text == "FRAC_SECOND" else None)
    if name is None:
        raise c.error(f"unknown time unit {text or arg.sql()}", arg)
    return name


def _temporal_arg(c: Compiler, e: exp.Expression, what: str) -> Node:
    node = c.compile(e)
    c.expect(node, lambda t: pt.is_timestamp(t) or pt.is_date(t), what, "a TIMESTAMP or DATE")
    return coerce(c, node, pa.timestamp("ms")) if pt.is_null(node.type) else node


@registry.function("TIMESTAMPADD")
def _timestampadd(c: Compiler, e: exp.Anonymous) -> Node:
    if len(e.expressions) != 3:
        raise c.error("TIMESTAMPADD takes 3 arguments (unit, count, timestamp)", e)
    unit = _unit_arg(c, e, e.expressions[0])
    n = c.compile(e.expressions[1])
    c.expect(n, pt.is_integer, "TIMESTAMPADD", "an integer count")
    n = coerce(c, n, BIGINT)
    ts = _temporal_arg(c, e.expressions[2], "TIMESTAMPADD")
    if pt.is_date(ts.type) and unit in UNIT_MS and UNIT_MS[unit] < 86_400_000:
        ts = coerce(c, ts, pa.timestamp("ms"))
    f, g = ts.fn, n.fn
    if unit in UNIT_MONTHS:
        months = UNIT_MONTHS[unit]
        return c.make(
            e, lambda b, ctx: add_months(f(b, ctx), pc.multiply(g(b, ctx), months)), [ts, n]
        )
    step = UNIT_MS[unit]
    t = ts.type

    def add(b, ctx):
        delta = pc.cast(pc.multiply(g(b, ctx), step), pa.duration("ms"))
        if pt.is_date(t):
            return pc.cast(pc.add(pc.cast(f(b, ctx), pa.timestamp("ms")), delta), t)
        return pc.add(f(b, ctx), delta)

    return c.make(e, add, [ts, n])


@registry.handles(exp.TimestampDiff, names=("TIMESTAMPDIFF",))
@registry.function("TIMESTAMPDIFF")
def _timestampdiff(c: Compiler, e: exp.Expression) -> Node:
    if isinstance(e, exp.Anonymous):
        if len(e.expressions) != 3:
            raise c.error("TIMESTAMPDIFF takes 3 arguments (unit, start, end)", e)
        unit_arg, start, end = e.expressions
    else:
        # sqlglot reads Flink's TIMESTAMPDIFF(unit, a, b) into this=unit, expression=a, unit=b
        unit_arg, start, end = e.this, e.expression, e.args.get("unit")
    unit = _unit_arg(c, e, unit_arg)
    a = _temporal_arg(c, start, "TIMESTAMPDIFF")
    b_ = _temporal_arg(c, end, "TIMESTAMPDIFF")
    a, b_ = unify(c, e, [a, b_])
    if pt.is_date(a.type):
        a, b_ = coerce(c, a, pa.timestamp("ms")), coerce(c, b_, pa.timestamp("ms"))
    f, g = a.fn, b_.fn
    if unit in UNIT_MONTHS:
        per = UNIT_MONTHS[unit]
        diff = lift(lambda x, y: pc.cast(pc.divide(months_between(x, y), per), pa.int32()))
        return c.make(e, lambda b, ctx: diff(f(b, ctx), g(b, ctx)), [a, b_])
    unit_ms = UNIT_MS[unit]
    per_ms = PER_SECOND[a.type.unit] / 1000  # timestamp units per millisecond

    def diff(b, ctx):
        units = pc.subtract(pc.cast(g(b, ctx), BIGINT), pc.cast(f(b, ctx), BIGINT))
        if per_ms < 1:
            return pc.cast(pc.divide(pc.multiply(units, 1000), unit_ms), pa.int32(), safe=False)
        return pc.cast(pc.divide(units, int(unit_ms * per_ms)), pa.int32(), safe=False)

    return c.make(e, diff, [a, b_])
