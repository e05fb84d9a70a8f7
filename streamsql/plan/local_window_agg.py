"""The local phase of a two-phase window aggregation: partial aggregates per slice and key.

Rule split_window_aggregates splits a WindowAggregate whose input crosses an exchange as
Flink splits window aggregates: a :class:`LocalWindowAggregate` chained to its input's task
pre-aggregates every batch per (slice, key), and a ``WindowAggregate(phase="global")``
behind the exchange merges those partial rows instead of raw rows. A slice is a row's
window (TUMBLE, or the window a WindowTVF placed it in) or its pane (a HOP the aggregate
assigns itself: windows are made of slide-long panes).

A partial row carries the keys, the partials of each aggregate (COUNT: ``count$i``, SUM:
``sum$i``, AVG: ``sum$i`` and ``count$i``, MIN and MAX: ``min$i`` / ``max$i``; FILTER
clauses are applied here), ``$rows``, the number of input rows it stands for, and
``$slice_end``. The global phase judges lateness with its own watermark, as the one-phase
aggregate would, and counts a late partial's ``$rows`` as late rows dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from streamsql.plan.nodes import (
    SLICE_END,
    SLICE_ROWS,
    AggCall,
    PlanNode,
    WindowSpec,
    _cols,
    _one_input,
)
from streamsql.types import TIME_TYPE, sum_type

#: The partials of each aggregate function, in the order they are stored.
PARTIALS = {"COUNT": ("count",), "SUM": ("sum",), "AVG": ("sum", "count")}


def partial_columns(i: int, a: AggCall) -> list[str]:
    """The names of the partial columns of aggregate number ``i``, ``a``.

    >>> partial_columns(3, AggCall("AVG", "price", "$agg3", pa.int64()))
    ['sum$3', 'count$3']
    """
    return [f"{fn}${i}" for fn in PARTIALS.get(a.func, (a.func.lower(),))]


def partial_fields(i: int, a: AggCall, input_schema: pa.Schema) -> list[pa.Field]:
    """The partial columns of aggregate number ``i``, ``a``.

    >>> a = AggCall("AVG", "price", "$agg0", pa.int64())
    >>> [f.name for f in partial_fields(0, a, pa.schema([("price", pa.int32())]))]
    ['sum$0', 'count$0']
    """
    fields = []
    for name in partial_columns(i, a):
        if name.startswith("count$"):
            t = pa.int64()
        elif name.startswith("sum$"):
            t = sum_type(input_schema.field(a.arg).type)
        else:
            t = input_schema.field(a.arg).type
        fields.append(pa.field(name, t))
    return fields


@dataclass(frozen=True, eq=False)
@_one_input
class LocalWindowAggregate(PlanNode):
    """Per batch, the partial aggregates of each (slice, key) of its rows, as rows for a
    global phase to merge. Stateless: nothing is held from one batch to the next.
    """

    input: PlanNode
    window: WindowSpec
    keys: tuple[str, ...]
    aggs: tuple[AggCall, ...]
    assigns: bool = False

    def __post_init__(self) -> None:
        assert not self.window.is_session, "SESSION windows aggregate in one phase"
        assert not (self.assigns and self.window.kind == "CUMULATE"), "one phase"
        assert not any(a.distinct for a in self.aggs), "DISTINCT aggregates in one phase"
        names = set(self.input.schema.names)
        needed = (self.window.time_col,) if self.assigns else ("window_end",)
        for name in (*needed, *self.keys):
            assert name in names, f"LocalWindowAggregate input lacks {name}"
        out = self.schema.names
        assert len(set(out)) == len(out), f"duplicate partial columns {out}"

    @property
    def panes(self) -> bool:
        """Whether the slices are HOP panes (else they are the windows)."""
        return self.assigns and self.window.kind == "HOP"

    @property
    def schema(self) -> pa.Schema:
        inp = self.input.schema
        fields = [inp.field(k) for k in self.keys]
        for i, a in enumerate(self.aggs):
            fields += partial_fields(i, a, inp)
        fields += [pa.field(SLICE_ROWS, pa.int64()), pa.field(SLICE_END, TIME_TYPE)]
        return pa.schema(fields)

    @property
    def time_attr(self) -> str | None:
        return SLICE_END

    def details(self) -> list[str]:
        items = [f"window=[{self.window.describe()}]"]
        if self.keys:
            items.append(f"groupBy=[{_cols(self.keys)}]")
        parts = []
        inp = self.input.schema
        for i, a in enumerate(self.aggs):
            where = f" FILTER (WHERE {a.filter})" if a.filter else ""
            for f in partial_fields(i, a, inp):
                fn = f.name.split("$")[0].upper()
                arg = "*" if a.arg is None else a.arg
                parts.append(f"{fn}({arg}){where} AS {f.name}")
        parts.append(f"COUNT(*) AS {SLICE_ROWS}")
        items.append(f"select=[{', '.join(parts)}]")
        items.append(f"slice=[{'pane' if self.panes else 'window'}]")
        return items
