"""Binding joins: the combined scope, equi-keys and residual, and the join strategy.

The ON clause is split into conjuncts. ``left = right`` conjuncts (one side over left
columns only, the other over right columns only) become the keys; comparisons between the
two inputs' time attributes with constant offsets become an interval; what remains is the
residual condition. The strategy follows from what is found:

- ``FOR SYSTEM_TIME AS OF`` the left's event time, against a table with a PRIMARY KEY and
  a watermark: an event-time temporal join; otherwise against a bounded table: a lookup join;
- both inputs windowed and joined on equal window_start and window_end: a window join;
- both time attributes bounded against each other from below and above: an interval join;
- otherwise a regular join, which keeps both inputs' rows and needs equi-keys on streams.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import BindError, PlanError
from streamsql.expr import interval_ms
from streamsql.parser.dialect import Flink, to_sql
from streamsql.parser.spans import span_of
from streamsql.plan.join_nodes import (
    IntervalJoin,
    Join,
    RegularJoin,
    WindowJoin,
)
from streamsql.plan.nodes import PlanNode, Project
from streamsql.plan.predicates import column_refs, conjoin, conjuncts
from streamsql.plan.scope import Scope, ScopeColumn
from streamsql.types import sql_type_name

NON_EQUI_HINT = (
    "join on equal keys (a.k = b.k), bound the two time attributes against each other for "
    "an interval join (b.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts), join windowed "
    "inputs on window_start and window_end, or join a bounded table"
)


def bind_join(binder, left: Scope, join: exp.Join, ctes: dict[str, Scope]) -> Scope:
    """The scope of ``left JOIN <join.this> ON …``."""
    kind = _kind(join)
    item = join.this
    version = item.args.get("version") if isinstance(item, exp.Table) else None
    if version is not None:
        from streamsql.plan.as_of_joins import bind_as_of  # it builds on this module

        return bind_as_of(binder, left, join, kind, version, ctes)
    right = binder._from_item(item, ctes)
    right = disjoint(left, right)
    both = Scope(left.node, left.columns + right.columns)
    cond = on_condition(binder, join, left, right, both)
    keys, rest = split_keys(cond, left, right)
    left_node, right_node, lkeys, rkeys = key_columns(left.node, right.node, keys)

    strategy, rest = _strategy(left, right, lkeys, rkeys, rest, join)
    residual = conjoin(rest)
    if isinstance(strategy, RegularJoin) and not lkeys:
        bounded = left.node.bounded and right.node.bounded
        if (not bounded and kind != "INNER") or (not bounded and residual is not None):
            raise PlanError(
                f"{kind} JOIN of unbounded streams needs an equality between the two inputs: "
                "without one every row of one stream must be kept to compare with every "
                "future row of the other, forever",
                span=span_of(join),
                hint=NON_EQUI_HINT,
            )
        if not bounded:
            raise PlanError(
                "a join of unbounded streams without a join condition (a cross join) keeps "
                "every row of both streams forever",
                span=span_of(join),
                hint=NON_EQUI_HINT,
            )
    node = Join(left_node, right_node, kind, lkeys, rkeys, residual, strategy)
    window, roles = _window_of(node, left, right)
    return Scope(node, left.columns + _using_hidden(right, join), window, roles)


# -- the parts of the ON clause -------------------------------------------------------------


def _kind(join: exp.Join) -> str:
    side = (join.args.get("side") or "").upper()
    kind = (join.args.get("kind") or "").upper()
    if kind in ("SEMI", "ANTI"):
        raise PlanError(f"{kind} joins are not supported", span=span_of(join))
    if side in ("LEFT", "RIGHT", "FULL"):
        return side
    return "INNER"


def disjoint(left: Scope, right: Scope) -> Scope:
    """``right`` with its plan columns renamed where they clash with the left's (Flink
    appends a digit: ``auction0``); SQL names and qualifiers stay.
    """
    taken = set(left.node.schema.names)
    renames: dict[str, str] = {}
    for name in right.node.schema.names:
        new = name
        i = 0
        while new in taken:
            new = f"{name}{i}"
            i += 1
        taken.add(new)
        renames[name] = new
    if all(k == v for k, v in renames.items()):
        return right
    exprs = tuple((renames[n], exp.column(n, quoted=True)) for n in right.node.schema.names)
    node = Project(right.node, exprs)
    cols = tuple(ScopeColumn(c.name, renames[c.internal], c.qualifiers) for c in right.columns)
    roles = {r: renames[c] for r, c in right.window_columns.items()}
    return Scope(node, cols, right.window, roles)


def _using_hidden(right: Scope, join: exp.Join) -> tuple[ScopeColumn, ...]:
    """The right's columns, those named in USING reachable only qualified: an unqualified
    USING column means the left one, and ``*`` shows it once.
    """
    using = {i.name for i in join.args.get("using") or ()}
    return tuple(
        dataclasses.replace(c, hidden=True) if c.name in using else c for c in right.columns
    )


def on_condition(binder, join, left: Scope, right: Scope, both: Scope) -> exp.Expression | None:
    using = join.args.get("using")
    if using:
        parts = []
        for ident in using:
            lcol = left.resolve(exp.column(ident.name))
            rcol = right.resolve(exp.column(ident.name))
            parts.append(exp.EQ(this=lcol, expression=rcol))
        return conjoin(parts)
    on = join.args.get("on")
    if on is None:
        return None
    return binder.expr(on, both)


def split_keys(cond, left: Scope, right: Scope):
    """``(left_expr, right_expr)`` pairs of the equalities between the inputs, and the
    other conjuncts.
    """
    lnames, rnames = set(left.node.schema.names), set(right.node.schema.names)
    keys, rest = [], []
    for c in conjuncts(cond):
        if isinstance(c, exp.EQ):
            a, b = c.this, c.expression
            ra, rb = column_refs(a), column_refs(b)
            if ra and rb and ra <= lnames and rb <= rnames:
                keys.append((a, b))
                continue
            if ra and rb and ra <= rnames and rb <= lnames:
                keys.append((b, a))
                continue
        rest.append(c)
    return keys, rest


def key_columns(left: PlanNode, right: PlanNode, keys):
    """Key expressions as columns of equal type on both inputs: plain columns of the same
    type are used as they are; others are computed (and cast) into ``$jk<i>`` columns.
    """
    from streamsql.expr import compile_expr

    lextra: list[tuple[str, exp.Expression]] = []
    rextra: list[tuple[str, exp.Expression]] = []
    lkeys, rkeys = [], []
    for i, (a, b) in enumerate(keys):
        ta = compile_expr(a, left.schema).type
        tb = compile_expr(b, right.schema).type
        common = common_type(ta, tb)
        if common is None:
            raise BindError(
                f"cannot join {to_sql(a)} ({sql_type_name(ta)}) with {to_sql(b)} "
                f"({sql_type_name(tb)}): the types do not compare",
                span=span_of(a),
                hint="CAST one side to the other's type",
            )
        for e, t, extra, out, side in ((a, ta, lextra, lkeys, "l"), (b, tb, rextra, rkeys, "r")):
            if isinstance(e, exp.Column) and t == common:
                out.append(e.name)
                continue
            name = f"$jk{i}{side}"
            value = e if t == common else exp.Cast(this=e, to=sql_type(common))
            extra.append((name, value))
            out.append(name)
    return with_columns(left, lextra), with_columns(right, rextra), tuple(lkeys), tuple(rkeys)


def with_columns(node: PlanNode, extra: list[tuple[str, exp.Expression]]) -> PlanNode:
    if not extra:
        return node
    passed = tuple((n, exp.column(n, quoted=True)) for n in node.schema.names)
    return Project(node, passed + tuple(extra))


def common_type(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    t = pa.types
    if a == b:
        return a
    if (t.is_integer(a) or t.is_floating(a) or t.is_decimal(a)) and (
        t.is_integer(b) or t.is_floating(b) or t.is_decimal(b)
    ):
        if t.is_integer(a) and t.is_integer(b):
            return pa.int64()
        return pa.float64()
    text = (pa.string(), pa.large_string(), pa.string_view())
    if a in text and b in text:
        return pa.string()
    if t.is_timestamp(a) and t.is_timestamp(b) and (a.tz is None) == (b.tz is None):
        return pa.timestamp("ms", a.tz)
    return None


def sql_type(t: pa.DataType) -> exp.DataType:
    return exp.DataType.build(sql_type_name(t), dialect=Flink)


# -- strategies ------------------------------------------------------------------------------


def _strategy(left: Scope, right: Scope, lkeys, rkeys, rest, join):
    lw, rw = left.window_columns, right.window_columns
    pairs = set(zip(lkeys, rkeys, strict=True))
    if (
        left.window is not None
        and right.window is not None
        and {"start", "end"} <= set(lw)
        and {"start", "end"} <= set(rw)
        and (lw["start"], rw["start"]) in pairs
        and (lw["end"], rw["end"]) in pairs
    ):
        require_append_only(left, right, join, "a window join")
        return WindowJoin(lw["end"], rw["end"]), rest
    lt, rt = left.node.time_attr, right.node.time_attr
    if lt and rt and not (left.node.mode.updating or right.node.mode.updating):
        lower, upper, others = _time_bounds(rest, lt, rt)
        if lower is not None and upper is not None:
            if lower > upper:
                raise BindError(
                    f"the time bounds of this join can never hold: {rt} - {lt} would have "
                    f"to be at least {lower} ms and at most {upper} ms",
                    span=span_of(join),
                )
            return IntervalJoin(lt, rt, lower, upper), others
    return RegularJoin(), rest


def require_append_only(left: Scope, right: Scope, join, what: str) -> None:
    for side in (left, right):
        if side.node.mode.updating:
            raise PlanError(
                f"{what} needs append-only inputs, but one input updates its rows",
                span=span_of(join),
                hint="join the inputs before aggregating them, or use a regular join",
            )


def _time_bounds(rest, lt: str, rt: str):
    """Bounds on ``rt - lt`` (ms) from conjuncts like ``r.ts BETWEEN l.ts - INTERVAL …
    AND l.ts + INTERVAL …`` or ``l.ts >= r.ts - INTERVAL …``; and the other conjuncts.
    """
    lower = upper = None
    others = []
    for c in rest:
        found = _bounds_of(c, lt, rt)
        if found is None:
            others.append(c)
            continue
        for kind, ms in found:
            if kind == "lower":
                lower = ms if lower is None else max(lower, ms)
            else:
                upper = ms if upper is None else min(upper, ms)
    return lower, upper, others


_FLIP = {exp.GTE: exp.LTE, exp.LTE: exp.GTE, exp.GT: exp.LT, exp.LT: exp.GT, exp.EQ: exp.EQ}


def _bounds_of(c: exp.Expression, lt: str, rt: str):
    if isinstance(c, exp.Between):
        lo = _bounds_of(exp.GTE(this=c.this, expression=c.args["low"]), lt, rt)
        hi = _bounds_of(exp.LTE(this=c.this, expression=c.args["high"]), lt, rt)
        return lo + hi if lo is not None and hi is not None else None
    if type(c) not in _FLIP:
        return None
    a, b = _offset(c.this), _offset(c.expression)
    if a is None or b is None:
        return None
    (ca, oa), (cb, ob) = a, b
    op = type(c)
    if (ca, cb) == (lt, rt):  # lt + oa  op  rt + ob   ->  rt - lt  flip(op)  oa - ob
        op, d = _FLIP[op], oa - ob
    elif (ca, cb) == (rt, lt):  # rt + oa  op  lt + ob  ->  rt - lt  op  ob - oa
        d = ob - oa
    else:
        return None
    if op is exp.EQ:
        return [("lower", d), ("upper", d)]
    if op is exp.GTE:
        return [("lower", d)]
    if op is exp.GT:
        return [("lower", d + 1)]
    if op is exp.LTE:
        return [("upper", d)]
    return [("upper", d - 1)]


def _offset(e: exp.Expression) -> tuple[str, int] | None:
    """``col``, ``col + INTERVAL …`` or ``col - INTERVAL …`` as (column, offset ms)."""
    while isinstance(e, exp.Paren):
        e = e.this
    if isinstance(e, exp.Column):
        return e.name, 0
    if isinstance(e, exp.Add | exp.Sub) and isinstance(e.this, exp.Column):
        try:
            ms = interval_ms(e.expression)
        except BindError:
            return None
        return e.this.name, ms if isinstance(e, exp.Add) else -ms
    return None


def _window_of(node: Join, left: Scope, right: Scope):
    """The window a window join's output carries (the preserved side's)."""
    if not isinstance(node.strategy, WindowJoin):
        return None, {}
    if node.kind == "RIGHT":
        return right.window, dict(right.window_columns)
    if node.kind == "FULL":
        return None, {}
    return left.window, dict(left.window_columns)
