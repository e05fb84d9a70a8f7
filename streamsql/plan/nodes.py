"""Logical plan nodes: immutable values that check themselves when they are built.

Every node knows its output Arrow schema, its time attribute (the column whose watermark
flows with the stream, if any) and its changelog mode. Optimizer rules rewrite nodes with
``dataclasses.replace``; fields they fill in (``parallelism``, partition keys) default to
"not decided yet".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import Span
from streamsql.expr import compile_expr, compile_predicate
from streamsql.parser.dialect import to_sql
from streamsql.plan.changelog import APPEND, RETRACT, Changelog
from streamsql.plan.emit import WindowEmit, duration_text
from streamsql.types import TIME_TYPE, sql_type_name

if TYPE_CHECKING:
    from streamsql.catalog import CatalogTable

WINDOW_COLUMNS = ("window_start", "window_end", "window_time")
#: Columns of a two-phase window aggregate's partial rows: the end of the slice (window or
#: pane) a partial belongs to, and how many input rows it stands for.
SLICE_END = "$slice_end"
SLICE_ROWS = "$rows"


@dataclass(frozen=True, eq=False)
class PlanNode:
    """Base of every logical node."""

    #: Distribution this node needs from its input: None (any), "hash", "singleton".
    stateful: ClassVar[bool] = False

    parallelism: int = field(default=0, kw_only=True)

    @property
    def inputs(self) -> tuple[PlanNode, ...]:
        return ()

    def with_inputs(self, *inputs: PlanNode) -> PlanNode:
        return self

    @property
    def schema(self) -> pa.Schema:
        raise NotImplementedError

    @property
    def time_attr(self) -> str | None:
        return None

    @property
    def mode(self) -> Changelog:
        """The changes this node's output carries; by default its first input's."""
        return self.inputs[0].mode if self.inputs else APPEND

    @property
    def bounded(self) -> bool:
        return all(i.bounded for i in self.inputs)

    @property
    def name(self) -> str:
        return type(self).__name__

    def details(self) -> list[str]:
        """``key=[value]`` items for EXPLAIN."""
        return []

    def describe(self, *, physical: bool = False) -> str:
        items = self.details() + self.mode.details()
        if physical and self.parallelism:
            items.append(f"parallelism=[{self.parallelism}]")
        return f"{self.name}({', '.join(items)})"


def _one_input(cls):
    """Give a single-input node ``inputs`` and ``with_inputs`` over its ``input`` field."""

    def inputs(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def with_inputs(self, *inputs: PlanNode) -> PlanNode:
        (new,) = inputs
        return self if new is self.input else dataclasses.replace(self, input=new)

    cls.inputs = property(inputs)
    cls.with_inputs = with_inputs
    return cls


def _cols(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


@dataclass(frozen=True, eq=False)
class Scan(PlanNode):
    """Read a table; ``columns`` are the (physical or computed) columns passed on."""

    table: CatalogTable
    columns: tuple[str, ...]
    #: Whether to generate watermarks (set off by prune_columns when no operator of the job
    #: uses event time, so that the time column need not be read).
    watermarks: bool = True
    #: Whether the job runs this scan on processing time (set by the binder when a window
    #: uses the table's PROCTIME() column): that column is then the time attribute, and the
    #: watermark is the clock.
    proctime: bool = False

    def __post_init__(self) -> None:
        known = set(self.table.schema.names)
        missing = [c for c in self.columns if c not in known]
        assert not missing, f"Scan of {self.table.name} has no columns {missing}"
        assert not self.proctime or self.table.proctime_attribute, "no PROCTIME() column"

    @property
    def schema(self) -> pa.Schema:
        full = self.table.schema
        return pa.schema([full.field(c) for c in self.columns])

    @property
    def time_attr(self) -> str | None:
        col = self.table.proctime_attribute if self.proctime else self.table.time_attribute
        return col if col in self.columns else None

    @property
    def bounded(self) -> bool:
        return self.table.connector.is_bounded(self.table.context)

    def details(self) -> list[str]:
        items = [f"table=[{self.table.name}]", f"fields=[{_cols(self.columns)}]"]
        if self.proctime:
            items.append(f"proctime=[{self.table.proctime_attribute}]")
        elif self.table.watermark is not None and self.watermarks:
            items.append(f"watermark=[{self.table.watermark.describe()}]")
        return items


class _RowsAsIs:
    """Mixin for single-input nodes whose rows keep the input's columns and time."""

    input: PlanNode

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    @property
    def time_attr(self) -> str | None:
        return self.input.time_attr


@dataclass(frozen=True, eq=False)
@_one_input
class Filter(_RowsAsIs, PlanNode):
    input: PlanNode
    condition: exp.Expression

    def __post_init__(self) -> None:
        compile_predicate(self.condition, self.input.schema)

    def details(self) -> list[str]:
        return [f"where=[{to_sql(self.condition)}]"]


@dataclass(frozen=True, eq=False)
@_one_input
class Project(PlanNode):
    """Compute named expressions over the input (``SELECT`` list, casts, renames)."""

    input: PlanNode
    exprs: tuple[tuple[str, exp.Expression], ...]
    _schema: pa.Schema = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = [n for n, _ in self.exprs]
        assert len(set(names)) == len(names), f"duplicate output names {names}"
        in_schema = self.input.schema
        fields = [pa.field(n, compile_expr(e, in_schema).type) for n, e in self.exprs]
        object.__setattr__(self, "_schema", pa.schema(fields))

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def time_attr(self) -> str | None:
        src = self.input.time_attr
        for name, e in self.exprs:
            if isinstance(e, exp.Column) and e.name == src:
                return name
        return None

    @property
    def mode(self) -> Changelog:
        passed = {e.name: name for name, e in self.exprs if isinstance(e, exp.Column)}
        return self.input.mode.renamed(passed)

    def is_identity(self) -> bool:
        names = self.input.schema.names
        return [n for n, _ in self.exprs] == names and all(
            isinstance(e, exp.Column) and e.name == n for n, e in self.exprs
        )

    def details(self) -> list[str]:
        parts = []
        for name, e in self.exprs:
            text = to_sql(e)
            parts.append(text if text in (name, f"`{name}`") else f"{text} AS {name}")
        return [f"select=[{', '.join(parts)}]"]


@dataclass(frozen=True)
class WindowSpec:
    """A window table function: TUMBLE(size), HOP(slide, size), CUMULATE(step, size), or
    SESSION(gap) per ``partition`` key (``size_ms`` is then the gap).
    """

    kind: str  # TUMBLE | HOP | CUMULATE | SESSION
    time_col: str
    size_ms: int
    slide_ms: int = 0  # HOP slide, CUMULATE step
    offset_ms: int = 0
    partition: tuple[str, ...] = ()  # SESSION: sessions are kept per these columns

    def __post_init__(self) -> None:
        assert self.kind in ("TUMBLE", "HOP", "CUMULATE", "SESSION"), self.kind
        assert self.size_ms > 0
        assert not self.partition or self.kind == "SESSION"

    @property
    def is_session(self) -> bool:
        return self.kind == "SESSION"

    def describe(self) -> str:
        ms = duration_text
        args = [f"time_col=[{self.time_col}]"]
        if self.kind == "HOP":
            args += [f"slide=[{ms(self.slide_ms)}]", f"size=[{ms(self.size_ms)}]"]
        elif self.kind == "CUMULATE":
            args += [f"step=[{ms(self.slide_ms)}]", f"max_size=[{ms(self.size_ms)}]"]
        elif self.kind == "SESSION":
            if self.partition:
                args.insert(0, f"partition=[{_cols(self.partition)}]")
            args.append(f"gap=[{ms(self.size_ms)}]")
        else:
            args.append(f"size=[{ms(self.size_ms)}]")
        if self.offset_ms:
            args.append(f"offset=[{ms(self.offset_ms)}]")
        return f"{self.kind}({', '.join(args)})"

    @property
    def windows_per_row(self) -> int:
        if self.kind in ("TUMBLE", "SESSION"):
            return 1
        return -(-self.size_ms // self.slide_ms)


@dataclass(frozen=True, eq=False)
@_one_input
class WindowTVF(PlanNode):
    """Assign rows to windows: adds window_start, window_end and window_time."""

    input: PlanNode
    window: WindowSpec

    @property
    def schema(self) -> pa.Schema:
        base = self.input.schema
        for name in WINDOW_COLUMNS:
            base = base.append(pa.field(name, TIME_TYPE))
        return base

    @property
    def time_attr(self) -> str | None:
        return "window_time"

    def details(self) -> list[str]:
        return [f"window=[{self.window.describe()}]"]


@dataclass(frozen=True, eq=False)
class LateSink:
    """Where a windowed operator writes the rows it drops as late
    ('table.exec.late-rows.sink'): the table, and the input columns it hands over (column
    pruning keeps them).
    """

    table: CatalogTable
    columns: tuple[str, ...]

    def describe(self) -> str:
        return self.table.name


@dataclass(frozen=True)
class AggCall:
    """One aggregate: ``func(DISTINCT? arg) FILTER (WHERE filter) AS name``.

    ``arg`` and ``filter`` name input columns (the binder projects expressions first).
    """

    func: str  # COUNT | SUM | MIN | MAX | AVG
    arg: str | None
    name: str
    type: pa.DataType
    distinct: bool = False
    filter: str | None = None

    def describe(self) -> str:
        inner = ("DISTINCT " if self.distinct else "") + (self.arg or "*")
        text = f"{self.func}({inner})"
        if self.filter:
            text += f" FILTER (WHERE {self.filter})"
        return f"{text} AS {self.name}"


@dataclass(frozen=True, eq=False)
@_one_input
class WindowAggregate(PlanNode):
    """Aggregate per window and key; each window is emitted once when the watermark passes
    its end, unless ``emit`` (from the 'table.exec.emit.*' settings) also fires it early or
    updates it with late rows: the output is then an upsert stream keyed by the window and
    the keys. The input carries window_start/window_end (from a WindowTVF), or, when
    ``assigns`` is set, the window's time column: the operator then assigns windows itself.
    With ``phase`` "global" the input is a LocalWindowAggregate's partial rows (two-phase
    aggregation, rule split_window_aggregates), which it merges instead of raw rows.
    """

    stateful: ClassVar[bool] = True

    input: PlanNode
    window: WindowSpec
    keys: tuple[str, ...]
    aggs: tuple[AggCall, ...]
    shuffle_keys: tuple[str, ...] | None = None  # decided by choose_grouping_keys
    assigns: bool = False  # set by fuse_window_assignment
    late_sink: LateSink | None = None  # set from 'table.exec.late-rows.sink'
    emit: WindowEmit = field(default_factory=WindowEmit)  # from 'table.exec.emit.*'
    phase: str = ""  # "global": merges partial rows (set by split_window_aggregates)

    def __post_init__(self) -> None:
        assert self.phase in ("", "global"), self.phase
        assert not (self.phase and (self.late_sink or self.emit.updating))
        names = set(self.input.schema.names)
        late = self.late_sink.columns if self.late_sink else ()
        for needed in (*self.window_inputs, *self.keys, *late):
            assert needed in names, f"WindowAggregate input lacks {needed}"

    @property
    def name(self) -> str:
        return "GlobalWindowAggregate" if self.phase == "global" else "WindowAggregate"

    def state_tables(self) -> tuple[str, ...]:
        """The operator's state tables: partial aggregates, and the distinct values of
        each DISTINCT aggregate.
        """
        if self.window.is_session:
            return ("sessions",)
        distinct = tuple(f"distinct{i}" for i, a in enumerate(self.aggs) if a.distinct)
        emitted = ("emitted",) if self.emit.updating else ()  # the rows to update later
        return ("partials", *distinct, *emitted)

    @property
    def mode(self) -> Changelog:
        if self.emit.updating:
            return Changelog("upsert", ("window_start", "window_end", *self.keys))
        return APPEND

    @property
    def updating_because(self) -> str:
        """Why the output updates (the settings), or ''."""
        return self.emit.because()

    @property
    def window_inputs(self) -> tuple[str, ...]:
        """The input columns that place a row in its windows."""
        if self.phase == "global":
            return (SLICE_END,)
        return (self.window.time_col,) if self.assigns else ("window_start", "window_end")

    @property
    def schema(self) -> pa.Schema:
        inp = self.input.schema
        fields = [pa.field(n, TIME_TYPE) for n in WINDOW_COLUMNS]
        fields += [inp.field(k) for k in self.keys]
        fields += [pa.field(a.name, a.type) for a in self.aggs]
        return pa.schema(fields)

    @property
    def time_attr(self) -> str | None:
        return "window_time"

    def details(self) -> list[str]:
        items = [f"window=[{self.window.describe()}]"]
        if self.keys:
            items.append(f"groupBy=[{_cols(self.keys)}]")
        items.append(f"select=[{', '.join(a.describe() for a in self.aggs)}]")
        items.append(f"emit=[{self.emit.describe()}]")
        if self.late_sink:
            items.append(f"late=[{self.late_sink.describe()}]")
        return items


@dataclass(frozen=True, eq=False)
@_one_input
class Aggregate(PlanNode):
    """Unbounded GROUP BY: each change of the input updates its group's row, which is
    emitted as -U (old row) / +U (new row), +I for a new group and -D for a group that
    becomes empty. The input may itself be updating: retractions are subtracted.
    """

    stateful: ClassVar[bool] = True

    input: PlanNode
    keys: tuple[str, ...]
    aggs: tuple[AggCall, ...]
    shuffle_keys: tuple[str, ...] | None = None  # decided by choose_grouping_keys

    def __post_init__(self) -> None:
        names = set(self.input.schema.names)
        for needed in self.keys:
            assert needed in names, f"Aggregate input lacks {needed}"

    @property
    def schema(self) -> pa.Schema:
        inp = self.input.schema
        fields = [inp.field(k) for k in self.keys]
        fields += [pa.field(a.name, a.type) for a in self.aggs]
        return pa.schema(fields)

    @property
    def mode(self) -> Changelog:
        return Changelog("upsert", self.keys)

    @property
    def retracting(self) -> bool:
        """Whether the input can retract rows (then MIN/MAX keep every value)."""
        return self.input.mode.updating

    def state_tables(self) -> tuple[str, ...]:
        values = tuple(f"values{i}" for i, a in enumerate(self.aggs) if _keeps_values(a, self))
        return ("accumulators", *values)

    def details(self) -> list[str]:
        items = [f"groupBy=[{_cols(self.keys)}]"] if self.keys else []
        items.append(f"select=[{', '.join(a.describe() for a in self.aggs)}]")
        if self.retracting:
            items.append("retractions=[consumed]")
        return items


def _keeps_values(a: AggCall, node: Aggregate) -> bool:
    """DISTINCT aggregates, and MIN/MAX over an input that retracts, need every value."""
    return a.distinct or (a.func in ("MIN", "MAX") and node.retracting)


@dataclass(frozen=True)
class SortKey:
    """One ``ORDER BY`` item of a ranking: a column, its direction and where NULLs go."""

    column: str
    ascending: bool = True
    nulls_first: bool | None = None  # None: NULLs count as smallest (first when ascending)

    def describe(self) -> str:
        return f"{self.column} {'ASC' if self.ascending else 'DESC'}"


@dataclass(frozen=True, eq=False)
@_one_input
class Rank(PlanNode):
    """``ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)`` before a filter bounds it; the
    binder turns it into a TopN when the query filters on the rank, and refuses it otherwise.
    """

    input: PlanNode
    partition_keys: tuple[str, ...]
    order: tuple[SortKey, ...]
    rank_name: str
    window_end: str | None = None  # set when the partition holds a window's start and end
    span: Span | None = field(default=None, compare=False)

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema.append(pa.field(self.rank_name, pa.int64()))

    @property
    def time_attr(self) -> str | None:
        return self.input.time_attr

    def details(self) -> list[str]:
        return [
            f"partitionBy=[{_cols(self.partition_keys)}]",
            f"orderBy=[{', '.join(k.describe() for k in self.order)}]",
            f"rank=[{self.rank_name}]",
        ]


@dataclass(frozen=True, eq=False)
@_one_input
class TopN(PlanNode):
    """The first ``limit`` rows of each partition by ``order`` (Top-N; dedup when
    ``limit`` is 1). Only ranks that change are emitted. ``rank_name`` None means the rank
    is not in the output (then a row entering or leaving the top is all that is emitted).
    """

    stateful: ClassVar[bool] = True

    input: PlanNode
    partition_keys: tuple[str, ...]
    order: tuple[SortKey, ...]
    limit: int
    rank_name: str | None
    shuffle_keys: tuple[str, ...] | None = None  # decided by choose_grouping_keys

    def __post_init__(self) -> None:
        assert self.limit >= 1

    @property
    def schema(self) -> pa.Schema:
        base = self.input.schema
        return base.append(pa.field(self.rank_name, pa.int64())) if self.rank_name else base

    @property
    def mode(self) -> Changelog:
        if self.rank_name:
            return Changelog("upsert", (*self.partition_keys, self.rank_name))
        if self.limit == 1:
            return Changelog("upsert", self.partition_keys)
        return RETRACT

    def state_tables(self) -> tuple[str, ...]:
        return ("rows",)

    def details(self) -> list[str]:
        items = [
            f"partitionBy=[{_cols(self.partition_keys)}]",
            f"orderBy=[{', '.join(k.describe() for k in self.order)}]",
            f"limit=[{self.limit}]",
        ]
        items.append(f"rank=[{self.rank_name}]" if self.rank_name else "rank=[not emitted]")
        return items


@dataclass(frozen=True, eq=False)
@_one_input
class WindowTopN(PlanNode):
    """Top-N per window (partitioned by window_start, window_end and keys) over an
    append-only input: each window's ranking is emitted once, when the watermark passes
    the window's end.
    """

    stateful: ClassVar[bool] = True

    input: PlanNode
    partition_keys: tuple[str, ...]  # include window_start and window_end
    order: tuple[SortKey, ...]
    limit: int
    rank_name: str | None
    window_end: str = "window_end"
    shuffle_keys: tuple[str, ...] | None = None  # decided by choose_grouping_keys
    late_sink: LateSink | None = None  # set from 'table.exec.late-rows.sink'

    @property
    def schema(self) -> pa.Schema:
        base = self.input.schema
        return base.append(pa.field(self.rank_name, pa.int64())) if self.rank_name else base

    @property
    def time_attr(self) -> str | None:
        return self.input.time_attr

    @property
    def mode(self) -> Changelog:
        return APPEND

    def state_tables(self) -> tuple[str, ...]:
        return ("rows",)

    def details(self) -> list[str]:
        return [
            f"partitionBy=[{_cols(self.partition_keys)}]",
            f"orderBy=[{', '.join(k.describe() for k in self.order)}]",
            f"limit=[{self.limit}]",
            f"rank=[{self.rank_name or 'not emitted'}]",
            "emit=[on window close]",
        ] + ([f"late=[{self.late_sink.describe()}]"] if self.late_sink else [])


@dataclass(frozen=True)
class Distribution:
    """How an Exchange routes rows: hash(keys), round_robin, singleton, broadcast."""

    kind: str
    keys: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"hash[{_cols(self.keys)}]" if self.kind == "hash" else self.kind


@dataclass(frozen=True, eq=False)
@_one_input
class Exchange(_RowsAsIs, PlanNode):
    """Redistribute rows between operator instances (inserted by the optimizer)."""

    input: PlanNode
    distribution: Distribution

    def details(self) -> list[str]:
        return [f"distribution=[{self.distribution.describe()}]"]


@dataclass(frozen=True, eq=False)
@_one_input
class Sink(_RowsAsIs, PlanNode):
    """Write into a table (INSERT INTO); the input already has the table's column types."""

    input: PlanNode
    table: CatalogTable

    def details(self) -> list[str]:
        return [
            f"table=[{self.table.name}]",
            f"connector=[{self.table.connector.describe(self.table.context)}]",
            f"fields=[{_cols(self.schema.names)}]",
        ]


@dataclass(frozen=True, eq=False)
@_one_input
class Collect(_RowsAsIs, PlanNode):
    """Hand the result rows to the caller (a SELECT run from the API, CLI or shell)."""

    input: PlanNode

    def details(self) -> list[str]:
        return [f"fields=[{_cols(self.schema.names)}]"]


def updates_origin(node: PlanNode) -> str:
    """A description of the node that turns an append-only stream into an updating one."""
    for candidate in walk(node):
        if candidate.mode.updating and not any(i.mode.updating for i in candidate.inputs):
            because = getattr(candidate, "updating_because", "")
            return candidate.describe() + (f", updating because {because}" if because else "")
    return node.describe()


def schema_text(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {sql_type_name(f.type)}" for f in schema)


def walk(roots: tuple[PlanNode, ...] | PlanNode) -> list[PlanNode]:
    """Every node reachable from the roots, each once, inputs before their consumers."""
    if isinstance(roots, PlanNode):
        roots = (roots,)
    seen: set[int] = set()
    order: list[PlanNode] = []

    def visit(node: PlanNode) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for child in node.inputs:
            visit(child)
        order.append(node)

    for root in roots:
        visit(root)
    return order


def transform_up(roots: tuple[PlanNode, ...], fn) -> tuple[PlanNode, ...]:
    """Rebuild the plan bottom-up with ``fn(node) -> node``; shared nodes stay shared."""
    memo: dict[int, PlanNode] = {}

    def visit(node: PlanNode) -> PlanNode:
        if id(node) in memo:
            return memo[id(node)]
        new_inputs = tuple(visit(i) for i in node.inputs)
        rebuilt = node
        if any(a is not b for a, b in zip(new_inputs, node.inputs, strict=True)):
            rebuilt = node.with_inputs(*new_inputs)
        result = fn(rebuilt)
        memo[id(node)] = result
        return result

    return tuple(visit(r) for r in roots)
