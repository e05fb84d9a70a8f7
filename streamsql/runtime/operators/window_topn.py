"""Top-N per window: rows wait in window state; when the watermark closes a window, its
rows are ranked per partition and the first ``N`` are emitted once (append-only).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from streamsql.plan.nodes import WindowTopN
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.ranking import StoredRows, rank_within
from streamsql.runtime.operators.window_state import WindowState, fire_limit
from streamsql.runtime.timeutil import MIN_WATERMARK, to_ms


class WindowTopNOperator(Operator):
    def __init__(self, node: WindowTopN) -> None:
        self.node = node
        self.stored = StoredRows(
            node.partition_keys, node.input.schema, (pa.field("we", pa.int64()),)
        )
        self.pk = self.stored.pk
        self.columns = self.stored.columns
        self.schema = node.schema

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        stored = self.stored.schema
        table = ctx.state.create(f"{ctx.state_prefix}_window_topn_rows_i{ctx.instance}", stored)
        self.windows = WindowState(ctx.state, {"rows": table}, {"rows": stored})

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        ends = to_ms(batch.column(self.node.window_end)).to_numpy(zero_copy_only=False)
        wm = self.ctx.watermark
        if wm != MIN_WATERMARK:
            late = ends <= fire_limit(wm)
            if late.any():
                self.ctx.late(batch.filter(pa.array(late)), wm)
                batch, ends = batch.filter(pa.array(~late)), ends[~late]
        self.windows.add("rows", self.stored.of(batch, we=pa.array(ends, pa.int64())))
        return ()

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        limit = fire_limit(watermark)
        if not self.windows.due(limit):
            return ()
        rows = self.windows.take(limit)["rows"]
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
