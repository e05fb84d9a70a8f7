"""Logical nodes with more than one input (joins, UNION ALL) and the lookup join.

A :class:`Join` has a left and a right input whose column names are disjoint (the binder
renames clashing right columns), equi-join keys, an optional residual condition over the
joined row, and a *strategy* that says how the engine runs it and bounds its state:

- :class:`RegularJoin`: both sides' rows are kept (forever, or 'table.exec.state.ttl');
  outer joins emit NULL-padded rows and retract them when a match arrives.
- :class:`IntervalJoin`: ``right_time - left_time`` lies in ``[lower_ms, upper_ms]``; rows
  expire from state once the watermark makes a match impossible (append-only).
- :class:`WindowJoin`: both inputs carry windows; rows join on equal windows and are
  emitted when the window closes (append-only).
- :class:`TemporalJoin`: each left row joins the version of the right (versioned) table
  valid at the left row's event time (append-only).

A :class:`LookupJoin` has one input and probes a table (loaded into DuckDB) with each batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
from sqlglot import exp

from streamsql.expr import compile_predicate
from streamsql.parser.dialect import to_sql
from streamsql.plan.changelog import APPEND, RETRACT, Changelog
from streamsql.plan.emit import duration_text
from streamsql.plan.nodes import PlanNode, _cols, _one_input

if TYPE_CHECKING:
    from streamsql.catalog import CatalogTable

JOIN_KINDS = ("INNER", "LEFT", "RIGHT", "FULL")


@dataclass(frozen=True)
class RegularJoin:
    """Keep both sides' rows; every arrival probes the other side."""

    def describe(self) -> str:
        return "regular"


@dataclass(frozen=True)
class IntervalJoin:
    """``left_time + lower_ms <= right_time <= left_time + upper_ms``."""

    left_time: str
    right_time: str
    lower_ms: int
    upper_ms: int

    def __post_init__(self) -> None:
        assert self.lower_ms <= self.upper_ms

    @property
    def watermark_delay_ms(self) -> int:
        """How far the output's time (the left row's) may trail the input watermark: a
        right row at the watermark can still match a left row this much older.
        """
        return max(self.upper_ms, -self.lower_ms, 0)

    def describe(self) -> str:
        def off(ms: int) -> str:
            if ms == 0:
                return self.left_time
            sign = "+" if ms > 0 else "-"
            return f"{self.left_time} {sign} {duration_text(abs(ms))}"

        return f"interval({off(self.lower_ms)} <= {self.right_time} <= {off(self.upper_ms)})"


@dataclass(frozen=True)
class WindowJoin:
    """Both inputs are windowed: equal (window_start, window_end) is part of the keys;
    a window's rows are joined and emitted when the watermark passes its end.
    """

    left_end: str
    right_end: str

    def describe(self) -> str:
        return f"window(on close of {self.left_end} = {self.right_end})"


@dataclass(frozen=True)
class TemporalJoin:
    """The right input is a versioned table (a PRIMARY KEY and a watermark): a left row at
    event time ``left_time`` joins the right row with the same key whose ``right_time``
    is the latest at or before it. Left rows wait until the watermark passes them.
    """

    left_time: str
    right_time: str

    def describe(self) -> str:
        return f"temporal(as of {self.left_time}, versions by {self.right_time})"


Strategy = RegularJoin | IntervalJoin | WindowJoin | TemporalJoin


@dataclass(frozen=True, eq=False)
class Join(PlanNode):
    """Join two streams. Output columns: the left input's, then the right input's."""

    stateful: ClassVar[bool] = True

    left: PlanNode
    right: PlanNode
    kind: str  # INNER | LEFT | RIGHT | FULL
    left_keys: tuple[str, ...]
    right_keys: tuple[str, ...]
    condition: exp.Expression | None = None  # residual, over the joined columns
    strategy: Strategy = RegularJoin()
    #: The hash keys of each input (set by choose_grouping_keys): () runs one instance.
    shuffle_keys: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        assert self.kind in JOIN_KINDS, self.kind
        assert len(self.left_keys) == len(self.right_keys)
        lnames, rnames = self.left.schema.names, self.right.schema.names
        clash = set(lnames) & set(rnames)
        assert not clash, f"Join inputs share column names {sorted(clash)}"
        assert all(k in lnames for k in self.left_keys), "left key missing"
        assert all(k in rnames for k in self.right_keys), "right key missing"
        if self.condition is not None:
            compile_predicate(self.condition, self.schema)

    @property
    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.left, self.right)

    def with_inputs(self, *inputs: PlanNode) -> PlanNode:
        left, right = inputs
        if left is self.left and right is self.right:
            return self
        return dataclasses.replace(self, left=left, right=right)

    @property
    def schema(self) -> pa.Schema:
        left, right = self.left.schema, self.right.schema
        fields = [*left, *right]
        if self.kind in ("RIGHT", "FULL"):  # the left side may be NULL-padded
            fields[: len(left)] = [f.with_nullable(True) for f in left]
        if self.kind in ("LEFT", "FULL"):
            fields[len(left) :] = [f.with_nullable(True) for f in right]
        return pa.schema(fields)

    @property
    def outer(self) -> bool:
        return self.kind != "INNER"

    @property
    def time_attr(self) -> str | None:
        match self.strategy:
            case IntervalJoin() | TemporalJoin() if self.kind in ("INNER", "LEFT"):
                return self.left.time_attr
            case IntervalJoin() if self.kind == "RIGHT":
                return self.right.time_attr
            case WindowJoin() if self.kind in ("INNER", "LEFT"):
                return self.left.time_attr
            case WindowJoin() if self.kind == "RIGHT":
                return self.right.time_attr
        return None  # a regular join's output has no time order (as in Flink)

    @property
    def mode(self) -> Changelog:
        if isinstance(self.strategy, RegularJoin):
            updating = self.left.mode.updating or self.right.mode.updating
            return RETRACT if (self.outer or updating) else APPEND
        return APPEND

    @property
    def updating_because(self) -> str:
        if isinstance(self.strategy, RegularJoin) and self.outer:
            return (
                f"a {self.kind} OUTER join emits NULL-padded rows and retracts them when a "
                "match arrives"
            )
        return ""

    @property
    def watermark_delay_ms(self) -> int:
        return getattr(self.strategy, "watermark_delay_ms", 0)

    def state_tables(self) -> tuple[str, ...]:
        return ("left", "right")

    def details(self) -> list[str]:
        items = [f"joinType=[{self.kind}]", f"strategy=[{self.strategy.describe()}]"]
        pairs = [f"{a} = {b}" for a, b in zip(self.left_keys, self.right_keys, strict=True)]
        if pairs:
            items.append(f"keys=[{', '.join(pairs)}]")
        if self.condition is not None:
            items.append(f"where=[{to_sql(self.condition)}]")
        return items


@dataclass(frozen=True, eq=False)
@_one_input
class LookupJoin(PlanNode):
    """``JOIN dim FOR SYSTEM_TIME AS OF s.proc``: each input batch probes ``table``, which
    the operator loads into DuckDB (again after ``cache_ttl_ms`` when it is set).

    ``columns`` are the table's columns the join passes on, ``names`` their output names.
    """

    stateful: ClassVar[bool] = False

    input: PlanNode
    table: CatalogTable
    kind: str  # INNER | LEFT
    left_keys: tuple[str, ...]
    table_keys: tuple[str, ...]
    columns: tuple[str, ...]
    names: tuple[str, ...]
    condition: exp.Expression | None = None  # residual, over the joined columns
    cache_ttl_ms: int = 0  # 0: load once

    def __post_init__(self) -> None:
        assert self.kind in ("INNER", "LEFT"), self.kind
        assert len(self.left_keys) == len(self.table_keys) > 0
        assert len(self.columns) == len(self.names)
        clash = set(self.input.schema.names) & set(self.names)
        assert not clash, f"LookupJoin output names clash {sorted(clash)}"
        if self.condition is not None:
            compile_predicate(self.condition, self.schema)

    @property
    def schema(self) -> pa.Schema:
        dim = self.table.schema
        fields = [dim.field(c).with_name(n) for c, n in zip(self.columns, self.names, strict=True)]
        if self.kind == "LEFT":
            fields = [f.with_nullable(True) for f in fields]
        return pa.schema([*self.input.schema, *fields])

    @property
    def time_attr(self) -> str | None:
        return self.input.time_attr

    def details(self) -> list[str]:
        pairs = [f"{a} = {b}" for a, b in zip(self.left_keys, self.table_keys, strict=True)]
        items = [
            f"table=[{self.table.name}]",
            f"joinType=[{self.kind}]",
            f"keys=[{', '.join(pairs)}]",
            f"fields=[{_cols(self.names)}]",
        ]
        if self.condition is not None:
            items.append(f"where=[{to_sql(self.condition)}]")
        if self.cache_ttl_ms:
            items.append(f"cache=[reload every {duration_text(self.cache_ttl_ms)}]")
        return items


@dataclass(frozen=True, eq=False)
class Union(PlanNode):
    """``UNION ALL``: the inputs' rows, interleaved; all inputs have this node's schema.
    The watermark is the minimum of the inputs' (as for every operator).
    """

    parts: tuple[PlanNode, ...]

    def __post_init__(self) -> None:
        assert len(self.parts) >= 2
        first = self.parts[0].schema
        for p in self.parts[1:]:
            assert p.schema.names == first.names, "UNION ALL inputs differ in columns"
            assert p.schema.types == first.types, "UNION ALL inputs differ in types"

    @property
    def inputs(self) -> tuple[PlanNode, ...]:
        return self.parts

    def with_inputs(self, *inputs: PlanNode) -> PlanNode:
        if all(a is b for a, b in zip(inputs, self.parts, strict=True)):
            return self
        return dataclasses.replace(self, parts=tuple(inputs))

    @property
    def schema(self) -> pa.Schema:
        return self.parts[0].schema

    @property
    def time_attr(self) -> str | None:
        attrs = {p.time_attr for p in self.parts}
        return attrs.pop() if len(attrs) == 1 else None

    @property
    def mode(self) -> Changelog:
        return RETRACT if any(p.mode.updating for p in self.parts) else APPEND

    def details(self) -> list[str]:
        return [f"inputs=[{len(self.parts)}]", f"fields=[{_cols(self.schema.names)}]"]
