"""Binding of window table functions: TUMBLE, HOP, CUMULATE and SESSION in FROM."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sqlglot import exp

from streamsql.errors import BindError, PlanError
from streamsql.expr import interval_ms
from streamsql.parser.dialect import TableArgument
from streamsql.parser.spans import span_of
from streamsql.plan.nodes import WINDOW_COLUMNS, WindowSpec, WindowTVF, updates_origin
from streamsql.plan.proctime import on_processing_time, proctime_columns
from streamsql.plan.scope import Scope, ScopeColumn

if TYPE_CHECKING:
    from streamsql.plan.binder import Binder

#: Parameter names in positional order, as Flink declares them.
SIGNATURES = {
    "TUMBLE": ("DATA", "TIMECOL", "SIZE", "OFFSET"),
    "HOP": ("DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"),
    "CUMULATE": ("DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"),
    "SESSION": ("DATA", "TIMECOL", "GAP"),
}
WINDOW_FUNCTIONS = tuple(SIGNATURES)


def is_window_call(e: exp.Expression) -> bool:
    return isinstance(e, exp.Anonymous) and str(e.this).upper() in WINDOW_FUNCTIONS


def bind_window_tvf(
    binder: Binder, call: exp.Anonymous, alias: str | None, ctes: dict[str, Scope]
) -> Scope:
    """Bind ``TUMBLE(TABLE t, DESCRIPTOR(ts), size)`` and friends to a WindowTVF scope."""
    kind = str(call.this).upper()
    args = _arguments(kind, call)
    data = args.get("DATA")
    if not isinstance(data, TableArgument):
        raise BindError(
            f"the first argument of {kind} must be TABLE <name>",
            span=span_of(data) or span_of(call),
            hint=f"e.g. {kind}(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        )
    if data.args.get("partition_by") and kind != "SESSION":
        raise BindError(
            f"{kind} does not take PARTITION BY",
            span=span_of(data),
            hint="only SESSION windows are kept per key",
        )
    table_name = data.this.name
    inner = binder.relation(table_name, data.this, ctes)
    if inner.node.mode.updating:
        raise PlanError(
            f"{kind} needs an append-only input, but '{table_name}' is an updating stream "
            f"(it comes from {updates_origin(inner.node)})",
            span=span_of(data),
            hint="window the append-only source, then aggregate the windows",
        )
    time_col, inner = _descriptor(kind, args.get("TIMECOL"), inner, call)
    if kind == "SESSION":
        partition = _partition_keys(data, inner)
        spec = WindowSpec(kind, time_col, _interval(kind, args, "GAP", call), partition=partition)
        return _window_scope(spec, inner, alias, table_name, data)
    size = _interval(kind, args, "SIZE", call)
    slide = _interval(kind, args, "SLIDE", call) if kind == "HOP" else 0
    step = _interval(kind, args, "STEP", call) if kind == "CUMULATE" else 0
    offset = _interval(kind, args, "OFFSET", call) if "OFFSET" in args else 0
    every = slide or step
    if every and size % every != 0:
        word = "slide" if kind == "HOP" else "step"
        raise PlanError(
            f"{kind} size must be a whole multiple of its {word} "
            f"(size {size} ms, {word} {every} ms)",
            span=span_of(call),
        )
    spec = WindowSpec(kind, time_col, size, every, offset)
    return _window_scope(spec, inner, alias, table_name, data)


def _window_scope(
    spec: WindowSpec, inner: Scope, alias: str | None, table_name: str, data: exp.Expression
) -> Scope:
    """The TVF's rows: the input's columns, then window_start, window_end, window_time."""
    kind = spec.kind
    clash = [c for c in WINDOW_COLUMNS if c in inner.names()]
    if clash:
        raise BindError(
            f"the input of {kind} already has a column named '{clash[0]}'",
            span=span_of(data),
            hint="rename it in a view or subquery first",
        )
    node = WindowTVF(inner.node, spec)
    quals = frozenset([alias]) if alias else frozenset([table_name])
    cols = [ScopeColumn(c.name, c.internal, quals) for c in inner.columns]
    cols += [ScopeColumn(n, n, quals) for n in WINDOW_COLUMNS]
    roles = {"start": "window_start", "end": "window_end", "time": "window_time"}
    return Scope(node, tuple(cols), spec, roles)


def _arguments(kind: str, call: exp.Anonymous) -> dict[str, exp.Expression]:
    names = SIGNATURES[kind]
    out: dict[str, exp.Expression] = {}
    for i, arg in enumerate(call.expressions):
        if isinstance(arg, exp.Kwarg):
            key = arg.this.name.upper()
            if key not in names:
                raise BindError(
                    f"{kind} has no parameter {key}",
                    span=span_of(arg),
                    hint="its parameters are " + ", ".join(names),
                )
            out[key] = arg.expression
        elif i < len(names):
            out[names[i]] = arg
        else:
            raise BindError(f"too many arguments for {kind}", span=span_of(arg))
    required = [n for n in names if n != "OFFSET"]
    missing = [n for n in required if n not in out]
    if missing:
        usage = {
            "TUMBLE": "TUMBLE(TABLE t, DESCRIPTOR(ts), size)",
            "HOP": "HOP(TABLE t, DESCRIPTOR(ts), slide, size)",
            "CUMULATE": "CUMULATE(TABLE t, DESCRIPTOR(ts), step, max_size)",
            "SESSION": "SESSION(TABLE t PARTITION BY key, DESCRIPTOR(ts), gap)",
        }[kind]
        raise BindError(
            f"{kind} is missing its {missing[0]} argument", span=span_of(call), hint=usage
        )
    return out


def _partition_keys(data: TableArgument, inner: Scope) -> tuple[str, ...]:
    """The columns of ``TABLE t PARTITION BY k`` / ``PARTITION BY (k1, k2)``."""
    keys = []
    for key in data.args.get("partition_by") or ():
        if not isinstance(key, exp.Column):
            raise BindError(
                "SESSION is partitioned by columns",
                span=span_of(key),
                hint="compute the key in a view first, then PARTITION BY that column",
            )
        keys.append(inner.resolve(key).name)
    return tuple(dict.fromkeys(keys))


def _descriptor(
    kind: str, arg: exp.Expression | None, inner: Scope, call: exp.Expression
) -> tuple[str, Scope]:
    """The time column, and the input scope: switched to processing time when the column
    is a PROCTIME() attribute.
    """
    if not (isinstance(arg, exp.Anonymous) and str(arg.this).upper() == "DESCRIPTOR"):
        raise BindError(
            f"the time column of {kind} is given as DESCRIPTOR(column)",
            span=span_of(arg) or span_of(call),
        )
    if len(arg.expressions) != 1 or not isinstance(arg.expressions[0], exp.Column):
        raise BindError("DESCRIPTOR takes exactly one column", span=span_of(arg))
    col = arg.expressions[0]
    bound = inner.resolve(col)
    name = bound.name
    time_attr = inner.node.time_attr
    if time_attr == name:
        return name, inner
    switched = on_processing_time(inner.node, name)
    if switched is not None:
        return name, dataclasses.replace(inner, node=switched)
    user = col.name

    def shown(internal: str) -> str:
        return next((c.name for c in inner.columns if c.internal == internal), internal)

    attrs = [f"'{shown(a)}'" for a in [time_attr, *proctime_columns(inner.node)] if a]
    if attrs:
        hint = f"the time attribute of this input is {' or '.join(attrs)}"
    else:
        hint = (
            "declare event time with a watermark in CREATE TABLE, e.g. "
            f"WATERMARK FOR {user} AS {user} - INTERVAL '5' SECOND, or processing time "
            "with a column `pt AS PROCTIME()`"
        )
    raise BindError(
        f"'{user}' is not a time attribute: windows need a column with a WATERMARK "
        "or a PROCTIME() column",
        span=span_of(col),
        hint=hint,
    )


def _interval(kind: str, args: dict[str, exp.Expression], key: str, call: exp.Expression) -> int:
    value = interval_ms(args[key])
    if value <= 0 and key != "OFFSET":
        raise BindError(f"the {key} of {kind} must be positive", span=span_of(args[key]))
    return value
