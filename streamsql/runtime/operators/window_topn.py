"""Top-N per window: rows wait in window state; when the watermark closes a window, its
rows are ranked per partition and the first ``N`` are emitted once (append-only).

A checkpoint keeps the waiting rows, keyed by the partition keys the input is hashed on
(stored rows hold the input's columns as they are), and the arrival counter that breaks
ties in the ranking.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from streamsql.plan.nodes import WINDOW_COLUMNS, WindowTopN
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.ranking import StoredRows, rank_within
from streamsql.runtime.operators.window_state import WindowState, fire_limit
from streamsql.runtime.snapshot import OperatorSnapshot
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

    def snapshot(self) -> OperatorSnapshot:
        """The rows waiting for their windows, and the next arrival number."""
        shuffle = self.node.shuffle_keys
        if shuffle is None:  # as choose_grouping_keys decides: the window is left out
            shuffle = tuple(k for k in self.node.partition_keys if k not in WINDOW_COLUMNS)
        keys = {"rows": tuple(shuffle)} if shuffle else {}
        return OperatorSnapshot(self.windows.contents(), keys, {"next_seq": self.stored.next_seq})

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        """Put the rows back; new rows are numbered after every old instance's (ties only
        compare rows of one partition, which came from one instance).
        """
        self.windows.load(snapshot.tables)
        self.stored.next_seq = max((v["next_seq"] for v in values), default=0)

    def describe_state(self) -> dict[str, int]:
        return {"window_topn_state_rows": self.windows.rows()}
