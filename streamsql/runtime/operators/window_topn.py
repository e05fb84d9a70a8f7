"""Top-N per window: rows wait in window state; when the watermark closes a window, its
rows are ranked per partition and the first ``N`` are emitted once (append-only).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from streamsql.plan.nodes import WindowTopN
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.group_keys import GroupKeys
from streamsql.runtime.operators.ranking import SEQ, rank_within
from streamsql.runtime.operators.window_state import WindowState, fire_limit
from streamsql.runtime.timeutil import MIN_WATERMARK, to_ms


class WindowTopNOperator(Operator):
    def __init__(self, node: WindowTopN) -> None:
        self.node = node
        schema = node.input.schema
        self.partition = GroupKeys(node.partition_keys, schema)
        self.pk = list(self.partition.state_columns)
        self.columns = list(schema.names)
        self.schema = node.schema
        self.next_seq = 0

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        stored = self.partition.state_schema()
        for f in self.node.input.schema:
            stored = stored.append(f)
        stored = stored.append(pa.field(SEQ, pa.int64())).append(pa.field("we", pa.int64()))
        table = ctx.state.create(f"{ctx.state_prefix}_window_topn_rows_i{ctx.instance}", stored)
        self.stored_schema = stored
        self.windows = WindowState(ctx.state, {"rows": table}, {"rows": stored})

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        ends = to_ms(batch.column(self.node.window_end)).to_numpy(zero_copy_only=False)
        wm = self.ctx.watermark
        if wm != MIN_WATERMARK:
            late = ends <= fire_limit(wm)
            if late.any():
                self.ctx.metrics.late_rows_dropped += int(late.sum())
                batch, ends = batch.filter(pa.array(~late)), ends[~late]
        cols = self.partition.state_arrays(batch)
        for name in self.columns:
            cols[name] = batch.column(name)
        cols[SEQ] = pa.array(np.arange(self.next_seq, self.next_seq + batch.num_rows))
        self.next_seq += batch.num_rows
        cols["we"] = pa.array(ends, pa.int64())
        self.windows.add("rows", pa.Table.from_pydict(cols, schema=self.stored_schema))
        return ()

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        if not self.windows.due(watermark):
            return ()
        rows = self.windows.take(watermark)["rows"]
        ordered, ranks = rank_within(rows, self.pk, self.node.order)
        keep = ranks <= self.node.limit
        top = ordered.filter(pa.array(keep)).select(self.columns)
        if self.node.rank_name:
            top = top.append_column(self.node.rank_name, pa.array(ranks[keep], pa.int64()))
        return top.cast(self.schema).to_batches() if top.num_rows else ()

    def on_barrier(self, epoch: int) -> None:
        self.windows.flush()

    def describe_state(self) -> dict[str, int]:
        return {"window_topn_state_rows": self.windows.rows()}
