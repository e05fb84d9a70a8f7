"""Binding of ROW_NUMBER() rankings: Top-N and deduplication.

``ROW_NUMBER() OVER (PARTITION BY k ORDER BY x DESC) AS rn`` in a subquery ranks rows; a
filter on the rank in the enclosing query (``WHERE rn <= 3``, ``rn < 4``, ``rn = 1``) bounds
it, and the pair becomes one TopN node (a WindowTopN when the partition includes a window's
start and end over an append-only input). A ranking without such a filter is refused.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sqlglot import exp

from streamsql.errors import BindError, PlanError
from streamsql.parser.spans import span_of
from streamsql.plan.nodes import (
    PlanNode,
    Project,
    Rank,
    SortKey,
    TopN,
    WindowAggregate,
    WindowTopN,
    walk,
)
from streamsql.plan.scope import Scope, ScopeColumn

if TYPE_CHECKING:
    from streamsql.plan.binder import Binder

RANK = "$rank"


def has_ranking(sel: exp.Select) -> bool:
    return any(item.find(exp.Window) for item in sel.expressions)


def bind_rank(binder: Binder, sel: exp.Select, scope: Scope) -> Scope:
    """The scope of a SELECT list holding one ``ROW_NUMBER() OVER (...)``: a Rank node
    with the rank as a column named ``$rank`` that the list can refer to.
    """
    windows = [w for item in sel.expressions for w in item.find_all(exp.Window)]
    win = windows[0]
    if len(windows) > 1:
        raise PlanError("only one ROW_NUMBER() per SELECT is supported", span=span_of(windows[1]))
    if not isinstance(win.this, exp.RowNumber):
        raise PlanError(
            f"{win.this.sql_name()} OVER (...) is not supported yet",
            span=span_of(win),
            hint="ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) with a filter on it "
            "gives Top-N and deduplication",
        )
    partition = [
        _column(binder, e, scope, "PARTITION BY") for e in win.args.get("partition_by") or []
    ]
    order = win.args.get("order")
    if order is None or not order.expressions:
        raise PlanError(
            "ROW_NUMBER() needs an ORDER BY in its OVER clause",
            span=span_of(win),
            hint="e.g. ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC)",
        )
    keys = []
    for item in order.expressions:
        column = _column(binder, item.this, scope, "ORDER BY")
        ascending = not item.args.get("desc")
        keys.append(SortKey(column, ascending, bool(item.args.get("nulls_first"))))
    end = scope.window_columns.get("end")
    start = scope.window_columns.get("start")
    windowed = end if end in partition and start in partition else None
    rank = Rank(
        scope.node, tuple(partition), tuple(keys), RANK, window_end=windowed, span=span_of(win)
    )
    columns = (*scope.columns, ScopeColumn(RANK, RANK))
    return Scope(rank, columns, scope.window, scope.window_columns)


def replace_ranking(item: exp.Expression) -> exp.Expression:
    """The SELECT item with its ``ROW_NUMBER() OVER (...)`` replaced by the rank column."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Window):
            return exp.column(RANK, quoted=True)
        return node

    return item.copy().transform(swap)


def bounded(node: PlanNode, cond: exp.Expression) -> tuple[PlanNode, exp.Expression | None]:
    """A WHERE over a ranked subquery: take its bound on the rank into a TopN.

    Returns the new input and what is left of the condition.
    """
    project = node if isinstance(node, Project) else None
    rank = project.input if project is not None else node
    if not isinstance(rank, Rank):
        return node, cond
    names = (
        {RANK}
        if project is None
        else {name for name, e in project.exprs if isinstance(e, exp.Column) and e.name == RANK}
    )
    limit, rest = None, []
    for part in _conjuncts(cond):
        n = _limit(part, names)
        if n is not None and limit is None:
            limit = n
        else:
            rest.append(part)
    if limit is None:
        return node, cond
    if limit < 1:
        raise PlanError("the filter on ROW_NUMBER() keeps no row", span=span_of(cond))
    if rank.window_end is not None:
        _refuse_updating_windows(rank)
    if rank.window_end is not None and not rank.input.mode.updating:
        top: PlanNode = WindowTopN(
            rank.input, rank.partition_keys, rank.order, limit, RANK, rank.window_end
        )
    else:
        top = TopN(rank.input, rank.partition_keys, rank.order, limit, RANK)
    out = top if project is None else Project(top, project.exprs)
    remaining = functools.reduce(lambda a, b: exp.And(this=a, expression=b), rest) if rest else None
    return out, remaining


def _refuse_updating_windows(rank: Rank) -> None:
    """A Top-N per window ranks each window once, when it closes: not over window results
    that the emit settings update after that.
    """
    for node in walk(rank.input):
        if isinstance(node, WindowAggregate) and node.emit.updating:
            raise PlanError(
                "a Top-N per window needs each window's final rows, but the window "
                f"aggregation below it is updating because {node.emit.because()}",
                span=rank.span,
                hint="RESET the setting for this query, or rank without window_start and "
                "window_end in PARTITION BY",
            )


def check_bounded(root: PlanNode) -> None:
    """A ranking nobody bounded would keep every row of every partition forever."""
    for node in walk(root):
        if isinstance(node, Rank):
            raise PlanError(
                "ROW_NUMBER() needs a filter on it in the enclosing query, such as "
                "WHERE rn <= 10 (Top-N) or WHERE rn = 1 (deduplication)",
                span=node.span,
                hint="SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY x "
                "DESC) AS rn FROM t) WHERE rn <= 3",
            )


def _column(binder: Binder, e: exp.Expression, scope: Scope, clause: str) -> str:
    bound = binder.expr(e, scope)
    if not isinstance(bound, exp.Column):
        raise BindError(
            f"{clause} of ROW_NUMBER() takes columns, not expressions",
            span=span_of(e),
            hint="compute the expression in a subquery and rank by its column",
        )
    return bound.name


def _conjuncts(e: exp.Expression) -> list[exp.Expression]:
    if isinstance(e, exp.And):
        return _conjuncts(e.this) + _conjuncts(e.expression)
    if isinstance(e, exp.Paren):
        return _conjuncts(e.this)
    return [e]


def _limit(e: exp.Expression, names: set[str]) -> int | None:
    """N for ``rn <= N``, ``rn < N + 1``, ``rn = 1`` and their mirror images."""

    def is_rank(x: exp.Expression) -> bool:
        return isinstance(x, exp.Column) and x.name in names

    def number(x: exp.Expression) -> int | None:
        return int(x.this) if isinstance(x, exp.Literal) and not x.is_string else None

    left, right = e.args.get("this"), e.args.get("expression")
    if left is None or right is None:
        return None
    if is_rank(right) and not is_rank(left):  # N >= rn  ->  rn <= N
        flipped = {exp.GTE: exp.LTE, exp.GT: exp.LT, exp.EQ: exp.EQ}.get(type(e))
        if flipped is None:
            return None
        return _limit(flipped(this=right, expression=left), names)
    if not is_rank(left):
        return None
    n = number(right)
    if n is None:
        return None
    match e:
        case exp.LTE():
            return n
        case exp.LT():
            return n - 1
        case exp.EQ() if n == 1:
            return 1
        case exp.EQ():
            raise PlanError(
                f"a filter rn = {n} is not supported; only rn = 1 (deduplication)",
                span=span_of(e),
                hint=f"use rn <= {n} and filter the rank downstream",
            )
    return None
