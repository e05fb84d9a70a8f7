"""``LIMIT n`` / ``OFFSET m`` / ``FETCH FIRST n ROWS ONLY``: the Limit node and its binding.

Over an append-only input a Limit passes the first rows to arrive (after skipping OFFSET
rows) and then needs nothing more: the job ends by itself, even over an unbounded source,
which is what ``SELECT * FROM datagen_table LIMIT 10`` relies on. Over an updating input the
rows to limit are the query's final result, which only a bounded input has: the Limit keeps
the changes and emits its rows of the final result at the end of the input. Both run as a
single instance, so that the count is the job's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sqlglot import exp

from streamsql.errors import PlanError, Span
from streamsql.parser.spans import span_of
from streamsql.plan.changelog import APPEND, Changelog
from streamsql.plan.nodes import PlanNode, _one_input, _RowsAsIs, updates_origin
from streamsql.plan.scope import Scope

#: A bounded Top-N, for hints: the first rows by an order.
TOP_N_HINT = (
    "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY x DESC) AS rn FROM t) WHERE rn <= 10"
)


@dataclass(frozen=True, eq=False)
@_one_input
class Limit(_RowsAsIs, PlanNode):
    """Skip ``offset`` rows, then pass ``fetch`` rows (None: all the rest).

    ``stateful``: it counts rows for the whole job, so it needs all of them in one instance
    (the optimizer gives it a singleton input, as a global aggregate).
    """

    stateful: ClassVar[bool] = True

    input: PlanNode
    fetch: int | None
    offset: int = 0
    span: Span | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        assert self.fetch is None or self.fetch >= 0
        assert self.offset >= 0
        assert self.bounded or not self.input.mode.updating, "LIMIT of an unbounded update"

    @property
    def final(self) -> bool:
        """Whether the input updates its rows: the Limit then takes the final result's."""
        return self.input.mode.updating

    @property
    def time_attr(self) -> str | None:
        """Final rows come after the input's last watermark: they carry no event time."""
        return None if self.final else self.input.time_attr

    @property
    def mode(self) -> Changelog:
        return APPEND  # the rows passed, or the final result's rows emitted once at the end

    @property
    def bounded(self) -> bool:
        """A fetch over an append-only input ends the job after that many rows."""
        return self.input.bounded or (self.fetch is not None and not self.final)

    def details(self) -> list[str]:
        items = [f"offset=[{self.offset}]"]
        if self.fetch is not None:
            items.append(f"fetch=[{self.fetch}]")
        if self.final:
            items.append("emit=[final rows at end of input]")
        return items


def bind_limit(tree: exp.Expression, scope: Scope) -> Scope:
    """``scope`` limited by the LIMIT / OFFSET / FETCH clauses of ``tree`` (a SELECT or a
    UNION), or ``scope`` itself when it has none.
    """
    clause = tree.args.get("limit")
    offset_clause = tree.args.get("offset")
    if clause is None and offset_clause is None:
        return scope
    fetch = _fetch(clause) if clause is not None else None
    offset = _count(offset_clause.expression, "OFFSET") if offset_clause is not None else 0
    if offset_clause is None and clause is not None and clause.args.get("offset") is not None:
        offset = _count(clause.args["offset"], "OFFSET")
    at = span_of(clause if clause is not None else offset_clause)
    node = scope.node
    if node.mode.updating and not node.bounded:
        raise PlanError(
            f"LIMIT needs the final result of this query, but it updates its rows (from "
            f"{updates_origin(node)}) and reads unbounded input, so it never has one",
            span=at,
            hint="keep the first rows by an order as they change with a Top-N, e.g. "
            f"{TOP_N_HINT}; or aggregate per window (TUMBLE, HOP, CUMULATE) so that each "
            "result is final and can be limited",
        )
    limited = Limit(node, fetch, offset, span=at)
    return Scope(limited, scope.columns, scope.window, scope.window_columns)


def _fetch(clause: exp.Expression) -> int:
    if isinstance(clause, exp.Fetch):
        options = clause.args.get("limit_options")
        if options is not None and (options.args.get("with_ties") or options.args.get("percent")):
            raise PlanError(
                "FETCH ... PERCENT and WITH TIES are not supported",
                span=span_of(clause),
                hint="FETCH FIRST n ROWS ONLY",
            )
        count = clause.args.get("count")
        return 1 if count is None else _count(count, "FETCH")
    return _count(clause.expression, "LIMIT")


def _count(e: exp.Expression, clause: str) -> int:
    """A row count: a literal integer, zero or more."""
    value = e.this if isinstance(e, exp.Paren) else e
    if isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit():
        return int(value.this)
    raise PlanError(
        f"{clause} takes a number of rows, zero or more, not {e.sql()}",
        span=span_of(e),
        hint=f"e.g. {clause} 10" if clause != "FETCH" else "e.g. FETCH FIRST 10 ROWS ONLY",
    )
