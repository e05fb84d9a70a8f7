"""Flink's legacy group windows: ``GROUP BY TUMBLE(ts, size)`` and ``TUMBLE_START(…)``
rewritten into the window table function form before binding.

``SELECT TUMBLE_START(ts, INTERVAL '10' SECOND), k, COUNT(*) FROM t GROUP BY
TUMBLE(ts, INTERVAL '10' SECOND), k`` becomes ``SELECT window_start, k, COUNT(*) FROM
TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start,
window_end, k``, so the optimizer, the runtime and EXPLAIN see one form only. HOP keeps its
argument order (time, slide, size); SESSION(ts, gap) partitions the session TVF by the other
GROUP BY columns. A subquery in FROM becomes a CTE so that the TVF can name it.
"""

from __future__ import annotations

from sqlglot import exp

from streamsql.errors import BindError, PlanError, did_you_mean
from streamsql.expr import interval_ms
from streamsql.parser.dialect import TableArgument, to_sql
from streamsql.parser.spans import span_of

#: The legacy group window calls and the usage shown when one is written wrongly.
USAGE = {
    "TUMBLE": "TUMBLE(time_col, size[, offset])",
    "HOP": "HOP(time_col, slide, size[, offset])",
    "SESSION": "SESSION(time_col, gap)",
}
ARITY = {"TUMBLE": (2, 3), "HOP": (3, 4), "SESSION": (2, 2)}
#: Auxiliary function suffix -> the window TVF column it stands for.
AUXILIARY = {"START": "window_start", "END": "window_end", "ROWTIME": "window_time"}
#: The name of the CTE a FROM subquery without an alias becomes.
SUBQUERY_CTE = "$group_window_input"


def rewrite_group_window(sel: exp.Select) -> exp.Select:
    """``sel`` with its legacy group window rewritten into the window TVF form, or ``sel``
    itself when it uses none.

    >>> import sqlglot
    >>> from streamsql.parser.dialect import Flink
    >>> q = sqlglot.parse_one("SELECT TUMBLE_END(ts, INTERVAL '1' MINUTE) AS we, COUNT(*) "
    ...     "FROM bids GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE)", read=Flink)
    >>> to_sql(rewrite_group_window(q))  # doctest: +NORMALIZE_WHITESPACE
    "SELECT window_end AS we, COUNT(*) FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts),
    INTERVAL '1' MINUTE)) GROUP BY window_start, window_end"
    """
    group = sel.args.get("group")
    windows = [g for g in (group.expressions if group else []) if _window_kind(g)]
    aux = [a for key in ("expressions", "having", "order") for a in _auxiliary_calls(sel, key)]
    misplaced = [a for key in ("where", "group") for a in _auxiliary_calls(sel, key)]
    if misplaced:
        raise BindError(
            f"{_name(misplaced[0])} is allowed only in SELECT, HAVING and ORDER BY",
            span=span_of(misplaced[0]),
        )
    if not windows:
        if aux:
            kind = _name(aux[0]).rsplit("_", 1)[0]
            raise BindError(
                f"{_name(aux[0])} needs a group window: GROUP BY {kind}(...)",
                span=span_of(aux[0]),
                hint=f"add {USAGE[kind]} to GROUP BY",
            )
        return sel
    if len(windows) > 1:
        raise BindError(
            "a GROUP BY can hold only one group window",
            span=span_of(windows[1]),
            hint="group by one window; for several window sizes, write one query per size",
        )
    out = sel.copy()
    window = next(g for g in out.args["group"].expressions if _window_kind(g))
    _check_window(window)
    source, alias, with_ = _source(out, window)
    others = [g for g in out.args["group"].expressions if g is not window]
    out.set("from_", exp.From(this=_tvf(window, source, alias, others)))
    out.set("with_", with_)
    keys: list[exp.Expression] = []
    for g in out.args["group"].expressions:
        keys += [exp.column("window_start"), exp.column("window_end")] if g is window else [g]
    out.set("group", exp.Group(expressions=keys))
    _replace_auxiliary(out, window, alias or source.name)
    return out


# -- recognizing the calls -------------------------------------------------------------------


def _name(call: exp.Anonymous) -> str:
    return str(call.this).upper()


def _window_kind(e: exp.Expression) -> str | None:
    if isinstance(e, exp.Anonymous) and _name(e) in USAGE:
        return _name(e)
    return None


def _is_auxiliary(e: exp.Expression) -> bool:
    if not isinstance(e, exp.Anonymous):
        return False
    kind, _, suffix = _name(e).rpartition("_")
    return kind in USAGE and suffix in (*AUXILIARY, "PROCTIME")


def _auxiliary_calls(sel: exp.Select, key: str) -> list[exp.Anonymous]:
    """The auxiliary calls in one clause of ``sel``, not those of nested queries."""
    found: list[exp.Anonymous] = []
    value = sel.args.get(key)
    for part in value if isinstance(value, list) else [value] if value else []:
        for node in part.walk(prune=lambda n: isinstance(n, exp.Query)):
            if _is_auxiliary(node):
                found.append(node)
    return found


def _check_window(call: exp.Anonymous) -> None:
    kind = _name(call)
    low, high = ARITY[kind]
    args = call.expressions
    if not low <= len(args) <= high:
        raise BindError(
            f"the group window {kind} takes {low}{'' if low == high else f' or {high}'} "
            f"arguments, got {len(args)}",
            span=span_of(call),
            hint=f"write {USAGE[kind]}",
        )
    if not isinstance(args[0], exp.Column):
        raise BindError(
            f"the time column of {kind} must be a column, got {to_sql(args[0])}",
            span=span_of(args[0]),
            hint="name a column that has a WATERMARK, e.g. "
            f"{kind}(ts, {', '.join(to_sql(a) for a in args[1:]) or '...'})",
        )
    if kind == "HOP":  # checked here too, so that the error points at the GROUP BY
        slide, size = interval_ms(args[1]), interval_ms(args[2])
        if slide > 0 and size % slide != 0:
            raise PlanError(
                f"HOP size must be a whole multiple of its slide (size {size} ms, "
                f"slide {slide} ms)",
                span=span_of(call),
            )


# -- the new FROM ----------------------------------------------------------------------------


def _source(
    sel: exp.Select, window: exp.Anonymous
) -> tuple[exp.Table, str | None, exp.With | None]:
    """The table the window TVF reads, the user's alias for it, and the query's WITH (with
    the FROM subquery added as a CTE).
    """
    with_ = sel.args.get("with_")
    from_ = sel.args.get("from_")
    item = from_.this if from_ is not None else None
    joins = sel.args.get("joins")
    alias = (item.alias or None) if item is not None else None
    match item:
        case exp.Table() if not joins and isinstance(item.this, exp.Identifier):
            table = item.copy()
            table.set("alias", None)
            return table, alias, with_
        case exp.Subquery() if not joins:
            name = alias or SUBQUERY_CTE
            cte = exp.CTE(this=item.this, alias=exp.TableAlias(this=exp.to_identifier(name)))
            with_ = with_ or exp.With(expressions=[])
            with_.append("expressions", cte)
            return exp.Table(this=exp.to_identifier(name)), alias, with_
    at = joins[0] if joins else item
    raise PlanError(
        f"the group window {_name(window)} needs one table, view or CTE in FROM",
        span=span_of(at) or span_of(window),
        hint="define the join or table function as a view (CREATE VIEW) or in WITH, and "
        f"GROUP BY {_name(window)}(...) over that; or use the window table functions, "
        "e.g. FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))",
    )


def _tvf(
    window: exp.Anonymous, source: exp.Table, alias: str | None, others: list[exp.Expression]
) -> exp.Table:
    """``TABLE(KIND(TABLE source [PARTITION BY …], DESCRIPTOR(ts), …)) [AS alias]``."""
    kind = _name(window)
    qualifiers = {alias or source.name}
    time_col, *intervals = window.expressions
    partition = None
    if kind == "SESSION":
        partition = [_unqualified(k, qualifiers) for k in _session_keys(others)] or None
    descriptor = exp.Anonymous(this="DESCRIPTOR", expressions=[_unqualified(time_col, qualifiers)])
    data = TableArgument(this=source, partition_by=partition)
    call = exp.Anonymous(this=kind, expressions=[data, descriptor, *(i.copy() for i in intervals)])
    call.meta.update(window.meta)
    table = exp.Table(this=exp.Anonymous(this="TABLE", expressions=[call]))
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def _session_keys(others: list[exp.Expression]) -> list[exp.Column]:
    """The other GROUP BY items, which a session window is partitioned by: plain columns."""
    for key in others:
        if not isinstance(key, exp.Column):
            raise PlanError(
                f"a SESSION group window is kept per key, so its other GROUP BY items must "
                f"be columns; got {to_sql(key)}",
                span=span_of(key),
                hint="compute the key in a view or subquery in FROM, then group by its name",
            )
    return [k for k in others if isinstance(k, exp.Column)]


def _unqualified(col: exp.Column, qualifiers: set[str]) -> exp.Column:
    """``col`` without its table qualifier, which must name the FROM item; the TVF's
    arguments are resolved against the table itself, not against the user's alias.
    """
    table = col.table
    if table and table not in qualifiers:
        raise BindError(
            f"unknown table '{table}' in '{to_sql(col)}'",
            span=span_of(col),
            hint=did_you_mean(table, qualifiers, "table"),
        )
    out = col.copy()
    for part in ("table", "db", "catalog"):
        out.set(part, None)
    return out


# -- the auxiliary functions -----------------------------------------------------------------


def _replace_auxiliary(sel: exp.Select, window: exp.Anonymous, qualifier: str) -> None:
    """Replace TUMBLE_START(…) and friends by the window columns, in place. An unaliased
    SELECT item keeps the name Flink gives it, ``EXPR$<position>``.
    """
    items = sel.expressions
    for i, item in enumerate(items):
        if _is_auxiliary(item):
            items[i] = exp.alias_(item, f"EXPR${i}", quoted=True)
    sel.set("expressions", items)
    for key in ("expressions", "having", "order"):
        for call in _auxiliary_calls(sel, key):
            call.replace(_window_column(call, window, qualifier))


def _window_column(call: exp.Anonymous, window: exp.Anonymous, qualifier: str) -> exp.Column:
    kind, _, suffix = _name(call).rpartition("_")
    if suffix == "PROCTIME":
        raise PlanError(
            f"{_name(call)} is not supported",
            span=span_of(call),
            hint=f"use {kind}_ROWTIME for the time attribute of the window (the window's "
            "window_time, on processing time too)",
        )
    if kind != _name(window) or _signature(call, qualifier) != _signature(window, qualifier):
        raise BindError(
            f"{to_sql(call)} does not match the group window {to_sql(window)}",
            span=span_of(call),
            hint=f"use the same time column and intervals, e.g. {_name(window)}_{suffix}("
            + ", ".join(to_sql(a) for a in window.expressions)
            + ")",
        )
    col = exp.column(AUXILIARY[suffix])
    col.this.meta.update(call.meta)
    return col


def _signature(call: exp.Anonymous, qualifier: str) -> tuple[object, ...]:
    """What makes two calls the same window: the time column and the interval lengths."""
    parts: list[object] = []
    for arg in call.expressions:
        if isinstance(arg, exp.Column):
            parts.append((arg.table or qualifier, arg.name.lower()))
            continue
        try:
            parts.append(interval_ms(arg))
        except BindError:
            parts.append(to_sql(arg))
    return tuple(parts)
