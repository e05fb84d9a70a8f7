"""Binding of GROUP BY queries: aggregate calls, group keys and window grouping."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import BindError, PlanError
from streamsql.expr import compile_expr, compile_predicate
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.plan.emit import window_emit
from streamsql.plan.nodes import (
    WINDOW_COLUMNS,
    AggCall,
    Aggregate,
    Filter,
    PlanNode,
    Project,
    WindowAggregate,
    WindowSpec,
    WindowTVF,
    updates_origin,
)
from streamsql.plan.scope import Scope, ScopeColumn
from streamsql.types import sql_type_name

if TYPE_CHECKING:
    from streamsql.plan.binder import Binder

SESSION_ONLY_AGGREGATED = (
    "a SESSION window is known only when it closes: group by window_start and window_end"
)
SESSION_HINT = (
    "e.g. SELECT window_start, window_end, k, COUNT(*) FROM TABLE(SESSION(TABLE t "
    "PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTE)) GROUP BY window_start, window_end, k"
)


def unaggregated_session(scope: Scope) -> bool:
    """Whether ``scope`` reads a SESSION TVF's rows (not yet aggregated into sessions)."""
    node = scope.node
    while isinstance(node, Filter):
        node = node.input
    return isinstance(node, WindowTVF) and node.window.is_session


AGGREGATES: dict[type, str] = {
    exp.Count: "COUNT",
    exp.Sum: "SUM",
    exp.Min: "MIN",
    exp.Max: "MAX",
    exp.Avg: "AVG",
}


def is_aggregate(e: exp.Expression) -> bool:
    if isinstance(e, exp.Filter):
        return isinstance(e.this, exp.AggFunc)
    return isinstance(e, exp.AggFunc)


def contains_aggregate(e: exp.Expression) -> bool:
    return any(is_aggregate(n) for n in e.walk() if not isinstance(n, exp.Subquery))


def agg_result_type(func: str, arg: pa.DataType | None, at: exp.Expression) -> pa.DataType:
    """The result type of an aggregate, following Flink (AVG of integers is an integer)."""
    if func == "COUNT":
        return pa.int64()
    assert arg is not None
    numeric = pa.types.is_integer(arg) or pa.types.is_floating(arg) or pa.types.is_decimal(arg)
    if func in ("SUM", "AVG") and not numeric:
        raise BindError(
            f"{func} needs a numeric argument, got {sql_type_name(arg)}", span=span_of(at)
        )
    if func == "SUM":
        if pa.types.is_integer(arg):
            return pa.int64()
        if pa.types.is_decimal(arg):
            return pa.decimal128(38, arg.scale)
        return pa.float64()
    if func == "AVG":
        if pa.types.is_decimal(arg):
            return pa.decimal128(38, max(6, arg.scale))
        return arg if pa.types.is_integer(arg) else pa.float64()
    if pa.types.is_nested(arg):
        raise BindError(f"{func} cannot compare {sql_type_name(arg)} values", span=span_of(at))
    return arg


@dataclass
class _Agg:
    call: AggCall
    key: str  # SQL text of the bound call, to share identical calls


class AggregateBinder:
    """Turns ``SELECT … GROUP BY window_start, window_end, k`` into
    Project(pre) → WindowAggregate → [Filter(HAVING)] → Project(select list), and any other
    GROUP BY (or aggregate without GROUP BY) into the same shape over an unbounded,
    updating Aggregate.
    """

    def __init__(self, binder: Binder, sel: exp.Select, scope: Scope) -> None:
        self.binder = binder
        self.sel = sel
        self.scope = scope
        self.pre: dict[str, tuple[str, exp.Expression]] = {}  # sql text -> (name, expr)
        self.aggs: dict[str, _Agg] = {}
        self.key_names: dict[str, str] = {}  # sql text of group expr -> output column

    def bind(self) -> Scope:
        scope = self.scope
        group = self.sel.args.get("group")
        groups = [self.binder.expr(g, scope) for g in (group.expressions if group else [])]
        start = scope.window_columns.get("start")
        end = scope.window_columns.get("end")
        names = {g.name for g in groups if isinstance(g, exp.Column)}
        windowed = scope.window is not None and start in names and end in names
        if unaggregated_session(scope) and not windowed:
            raise BindError(
                SESSION_ONLY_AGGREGATED, span=span_of(group or self.sel), hint=SESSION_HINT
            )
        roles: dict[str, str] = {}
        if windowed:
            _require_append(scope.node, "window aggregation", group or self.sel)
            window_time = scope.window_columns.get("time")
            roles = {start: "window_start", end: "window_end"}
            if window_time:
                roles[window_time] = "window_time"
        for g in groups:
            if isinstance(g, exp.Column) and g.name in roles:
                continue
            self.key_names[to_sql(g)] = self._pre_column(g, "$g")
        if windowed:
            self._pre_named(start, "window_start")
            self._pre_named(end, "window_end")

        items = [self.binder.expr(i, scope, allow_aggregates=True) for i in self.sel.expressions]
        having = self.sel.args.get("having")
        having_expr = (
            self.binder.expr(having.this, scope, allow_aggregates=True) if having else None
        )
        for e in [*items, *([having_expr] if having_expr is not None else [])]:
            for node in e.find_all(exp.AggFunc, exp.Filter):
                if is_aggregate(node) and not _inside_aggregate(node):
                    self._aggregate(node, scope.node.schema)

        if not self.pre:  # COUNT(*) alone reads no column, but a batch needs one for its rows
            first = scope.node.schema.names[0]
            self.pre[first] = (first, exp.column(first, quoted=True))
        pre = Project(scope.node, tuple(self.pre.values()))
        keys = tuple(self.key_names.values())
        calls = tuple(a.call for a in self.aggs.values())
        node: PlanNode
        if windowed:
            assert scope.window is not None
            window = scope.window
            if window.is_session:
                window = self._session_keys(window, groups, group)
            emit = window_emit(self.binder.settings, window.kind, span_of(group or self.sel))
            node = WindowAggregate(pre, window, keys, calls, emit=emit)
        else:
            node = Aggregate(pre, keys, calls)
        if having_expr is not None:
            node = Filter(node, self._rewrite(having_expr, roles))
        outputs: list[tuple[str, exp.Expression]] = []
        cols: list[ScopeColumn] = []
        window_roles: dict[str, str] = {}
        for item_sql, bound in zip(self.sel.expressions, items, strict=True):
            name = self.binder.output_name(item_sql, len(outputs), [n for n, _ in outputs])
            rewritten = self._rewrite(_strip_alias(bound), roles)
            outputs.append((name, rewritten))
            cols.append(ScopeColumn(name, name))
            if windowed and isinstance(rewritten, exp.Column) and rewritten.name in WINDOW_COLUMNS:
                window_roles[rewritten.name.removeprefix("window_")] = name
        project = Project(node, tuple(outputs))
        window = scope.window if window_roles else None
        return Scope(project, tuple(cols), window, window_roles if window else {})

    # -- pieces ----------------------------------------------------------------------------

    def _session_keys(
        self, window: WindowSpec, groups: list[exp.Expression], group: exp.Expression
    ) -> WindowSpec:
        """A session window's PARTITION BY columns, named as the aggregate's group keys:
        sessions are kept per partition, so every partition column must be grouped by.
        """
        keys = []
        for column in window.partition:
            g = next((g for g in groups if isinstance(g, exp.Column) and g.name == column), None)
            if g is None:
                raise BindError(
                    f"a SESSION window aggregation must group by its PARTITION BY column "
                    f"'{column}'",
                    span=span_of(group),
                    hint=f"GROUP BY window_start, window_end, {column}",
                )
            keys.append(self.key_names[to_sql(g)])
        distinct = [a for a in self.aggs.values() if a.call.distinct]
        if distinct:
            raise BindError(
                "DISTINCT aggregates over SESSION windows are not supported yet",
                span=span_of(group),
                hint="use TUMBLE or HOP windows for DISTINCT, or aggregate distinct values "
                "in a view first",
            )
        return dataclasses.replace(window, partition=tuple(keys))

    def _pre_named(self, source: str, name: str) -> None:
        self.pre[f"$window:{name}"] = (name, exp.column(source, quoted=True))

    def _pre_column(self, e: exp.Expression, prefix: str) -> str:
        text = to_sql(e)
        if text in self.pre:
            return self.pre[text][0]
        if (
            isinstance(e, exp.Column)
            and e.name not in WINDOW_COLUMNS
            and not e.name.startswith("$")
        ):
            name = e.name
        else:
            name = f"{prefix}{len(self.pre)}"
        self.pre[text] = (name, e)
        return name

    def _aggregate(self, node: exp.Expression, schema: pa.Schema) -> None:
        text = to_sql(node)
        if text in self.aggs:
            return
        filt = None
        call = node
        if isinstance(node, exp.Filter):
            call = node.this
            cond = (
                node.expression.this if isinstance(node.expression, exp.Where) else node.expression
            )
            compile_predicate(cond, schema)
            filt = self._pre_column(cond, "$f")
        func = AGGREGATES.get(type(call))
        if func is None:
            raise BindError(
                f"aggregate function {call.sql_name()} is not supported",
                span=span_of(call),
                hint="supported: " + ", ".join(AGGREGATES.values()),
            )
        arg = call.this
        distinct = False
        if isinstance(arg, exp.Distinct):
            distinct = True
            if len(arg.expressions) != 1:
                raise BindError(f"{func}(DISTINCT ...) takes one argument", span=span_of(call))
            arg = arg.expressions[0]
        arg_name = None
        arg_type = None
        if arg is not None and not isinstance(arg, exp.Star):
            if func == "COUNT" and not distinct and isinstance(arg, exp.Literal):
                arg = None  # COUNT(1) counts rows
            else:
                arg_type = compile_expr(arg, schema).type
                arg_name = self._pre_column(arg, "$a")
        elif func != "COUNT":
            raise BindError(f"{func}(*) is not valid; name a column", span=span_of(call))
        if distinct and func in ("MIN", "MAX"):
            distinct = False
        name = f"$agg{len(self.aggs)}"
        result = agg_result_type(func, arg_type, call)
        self.aggs[text] = _Agg(AggCall(func, arg_name, name, result, distinct, filt), text)

    def _rewrite(self, e: exp.Expression, roles: dict[str, str]) -> exp.Expression:
        """Express ``e`` over the aggregate's output: calls and keys become columns."""

        def replace(node: exp.Expression) -> exp.Expression:
            text = to_sql(node)
            if text in self.aggs:
                return exp.column(self.aggs[text].call.name, quoted=True)
            if text in self.key_names:
                return exp.column(self.key_names[text], quoted=True)
            if isinstance(node, exp.Column) and node.name in roles:
                return exp.column(roles[node.name], quoted=True)
            return node

        out = e.copy().transform(replace)
        for col in out.find_all(exp.Column):
            allowed = {a.call.name for a in self.aggs.values()} | set(self.key_names.values())
            if col.name not in allowed and col.name not in WINDOW_COLUMNS:
                user = next(
                    (c.name for c in self.scope.columns if c.internal == col.name), col.name
                )
                raise BindError(
                    f"column '{user}' must appear in GROUP BY or be used in an aggregate function",
                    span=span_of(_find_original(e, col.name)),
                    hint=f"add '{user}' to GROUP BY, or aggregate it, e.g. MAX({user})",
                )
        return out


def _require_append(node: PlanNode, what: str, at: exp.Expression) -> None:
    """Windowed operators close windows by event time and cannot take back what they
    emitted: their input must only append.
    """
    if node.mode.updating:
        raise PlanError(
            f"{what} needs an append-only input, but its input is an updating stream "
            f"({node.mode.kind}, from {updates_origin(node)})",
            span=span_of(at),
            hint="apply the window to the append-only source first, then aggregate the "
            "windowed result",
        )


def _inside_aggregate(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None:
        if is_aggregate(parent):
            return True
        parent = parent.parent
    return False


def _strip_alias(e: exp.Expression) -> exp.Expression:
    return e.this if isinstance(e, exp.Alias) else e


def _find_original(e: exp.Expression, name: str) -> exp.Expression | None:
    return next((c for c in e.find_all(exp.Column) if c.name == name), None)
