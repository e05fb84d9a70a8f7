"""The local phase of a two-phase window aggregation: each batch's partial aggregates per
(slice, key), emitted as rows for the global phase behind the exchange.

It keeps no state and judges no lateness: its watermark is its own input's, ahead of the
global phase's (the minimum over every input of the exchange), so only the global phase
knows which windows have fired. A partial row stands for the rows it aggregates; its
``$rows`` column says how many.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from streamsql.plan.local_window_agg import LocalWindowAggregate, partial_columns
from streamsql.plan.nodes import SLICE_ROWS
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.operators.window_partials import (
    col,
    partial_names,
    partial_table,
    slice_ends,
)
from streamsql.runtime.timeutil import from_ms


class LocalWindowAggOperator(Operator):
    """Turns each batch into its partial rows (``node.schema``)."""

    def __init__(self, node: LocalWindowAggregate) -> None:
        self.node = node
        self.plain = list(enumerate(node.aggs))
        self.schema = node.schema
        self.key_cols = [f"k{i}" for i in range(len(node.keys))]
        # Internal partial column -> output column, in the output's order.
        self.names = {k: name for k, name in zip(self.key_cols, node.keys, strict=True)}
        for i, a in self.plain:
            self.names |= dict(zip(partial_names(i, a), partial_columns(i, a), strict=True))
        self.names |= {"__n": SLICE_ROWS}

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        batch, _, ends = slice_ends(batch, self.node.window, self.node.assigns)
        base = {"we": pa.array(ends, pa.int64())}
        for name, key in zip(self.key_cols, self.node.keys, strict=True):
            base[name] = col(batch, key)
        partials = partial_table(batch, base, self.plain)
        arrays = [partials.column(name) for name in self.names]
        arrays.append(from_ms(partials.column("we").combine_chunks()))
        out = [
            a if a.type == f.type else a.cast(f.type)
            for a, f in zip(arrays, self.schema, strict=True)
        ]
        return pa.Table.from_arrays(out, schema=self.schema).to_batches()
