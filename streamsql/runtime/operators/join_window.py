"""Window join: each input's rows wait in window state; when the watermark closes a window,
its left and right rows are joined and emitted once (append-only), then dropped.

Both inputs carry their window (from a window TVF); the equi keys include the window
columns, so rows of different windows never pair. A side's state holds its input columns
(stored as ``c0, c1, ...``: input names may clash in DuckDB, which ignores case), ``we``
(the window end, epoch ms) and ``seq`` (arrival order on that side). Rows go into an Arrow
write buffer that moves into DuckDB once it holds ``window_state.FLUSH_ROWS`` rows and at
every checkpoint barrier (:class:`WindowState`).

Output order is deterministic: windows by end; within one, each left row (in arrival order)
with its matches in right arrival order, or NULL-padded (LEFT, FULL); then the right rows
without a match (RIGHT, FULL).

A checkpoint keeps each side's rows (tables ``left`` and ``right``, keyed by the stored
columns of that input's hash keys, which include the window) and the arrival counters; a
restore writes the rows back to DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from streamsql.plan.join_nodes import Join, WindowJoin
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.join_pairs import (
    PairMatcher,
    combine,
    input_hash_keys,
    unmatched,
)
from streamsql.runtime.operators.window_state import WindowState, fire_limit
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK, to_ms

#: Windows that fire together are joined in groups of about this many rows (both sides).
GROUP_ROWS = 1 << 20

_SIDES = ("left", "right")
_NONE = np.zeros(0, np.int64)


class WindowJoinOperator(Operator):
    """Joins the rows of each window of both inputs once the watermark closes it."""

    def __init__(self, node: Join) -> None:
        assert isinstance(node.strategy, WindowJoin), node.strategy
        self.node = node
        self.schema = node.schema
        self.ends = (node.strategy.left_end, node.strategy.right_end)
        # Windows that fire together are joined at once: the keys must keep them apart.
        pairs = set(zip(node.left_keys, node.right_keys, strict=True))
        assert self.ends in pairs, f"window join keys {pairs} lack the window ends"
        self.inputs = (node.left.schema, node.right.schema)
        self.stored = tuple(_stored_schema(s) for s in self.inputs)
        lk = tuple(_positional(node.left.schema, k) for k in node.left_keys)
        rk = tuple(_positional(node.right.schema, k) for k in node.right_keys)
        self.matcher = PairMatcher(lk, rk, node.schema, node.condition)
        self.pad_left = node.kind in ("LEFT", "FULL")  # left rows without a match
        self.pad_right = node.kind in ("RIGHT", "FULL")

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        self.sides: list[WindowState] = []
        for name, schema in zip(_SIDES, self.stored, strict=True):
            table = ctx.state.create(
                f"{ctx.state_prefix}_window_join_{name}_i{ctx.instance}", schema
            )
            self.sides.append(WindowState(ctx.state, {"rows": table}, {"rows": schema}))
        self.seq = [0, 0]  # rows seen per side: the next row's arrival number
        self.held = [0, 0]  # rows in state per side
        ctx.metrics.extra["join_state_rows_peak"] = 0

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        ends = to_ms(batch.column(self.ends[input_index])).to_numpy(zero_copy_only=False)
        wm = self.ctx.watermark
        if wm != MIN_WATERMARK:
            late = ends <= fire_limit(wm)  # the window closed before the row came
            if late.any():
                self.ctx.late(batch.filter(pa.array(late)), wm)
                batch, ends = batch.filter(pa.array(~late)), ends[~late]
        n = batch.num_rows
        if not n:
            return ()
        first = self.seq[input_index]
        seq = np.arange(first, first + n, dtype=np.int64)
        rows = pa.Table.from_arrays(
            [*batch.columns, pa.array(ends, pa.int64()), pa.array(seq)],
            schema=self.stored[input_index],
        )
        self.sides[input_index].add("rows", rows)
        self.seq[input_index] += n
        self.held[input_index] += n
        extra = self.ctx.metrics.extra
        extra["join_state_rows_peak"] = max(extra["join_state_rows_peak"], sum(self.held))
        return ()

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        return self._fire(fire_limit(watermark))

    def close(self) -> Iterable[pa.RecordBatch]:
        return self._fire(MAX_WATERMARK)

    def on_barrier(self, epoch: int) -> None:
        for side in self.sides:
            side.flush()

    def snapshot(self) -> OperatorSnapshot:
        snap = OperatorSnapshot(values={"seq": list(self.seq)})
        for index, (name, side) in enumerate(zip(_SIDES, self.sides, strict=True)):
            snap.tables[name] = side.read(None, MAX_WATERMARK)["rows"]
            keys = input_hash_keys(self.node, index)
            if keys:
                snap.keys[name] = tuple(_positional(self.inputs[index], k) for k in keys)
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        for index, (name, side) in enumerate(zip(_SIDES, self.sides, strict=True)):
            rows = snapshot.table(name, self.stored[index])
            if rows is not None and rows.num_rows:
                side.add("rows", rows)
                side.flush()
                self.held[index] = rows.num_rows
            # New rows come after every restored one (of any old instance) within a window.
            self.seq[index] = max((v["seq"][index] for v in values), default=0)

    def describe_state(self) -> dict[str, int]:
        return {"join_left_rows": self.held[0], "join_right_rows": self.held[1]}

    # -- firing ------------------------------------------------------------------------------

    def _fire(self, limit: int) -> list[pa.RecordBatch]:
        """Join and emit the windows ending at or before ``limit``, in end order."""
        if not any(side.due(limit) for side in self.sides):
            return []
        left, right = (self._take(i, limit) for i in (0, 1))
        lwe = left.column("we").to_numpy()
        rwe = right.column("we").to_numpy()
        out = []
        for l_rows, r_rows in _groups(lwe, rwe):
            joined = self._join(left.slice(*l_rows), right.slice(*r_rows))
            if joined.num_rows:
                out.append(joined)
        return out

    def _take(self, index: int, limit: int) -> pa.Table:
        """Remove the side's rows of windows ending by ``limit``, ordered by (we, seq)."""
        rows = self.sides[index].take(limit)["rows"].combine_chunks()
        self.held[index] -= rows.num_rows
        we = rows.column("we").to_numpy()
        seq = rows.column("seq").to_numpy()
        d_we, d_seq = np.diff(we), np.diff(seq)
        if not np.all((d_we > 0) | ((d_we == 0) & (d_seq > 0))):
            # Buffered rows of several windows interleave; rows from DuckDB come last.
            rows = rows.take(pa.array(np.lexsort((seq, we))))
        return rows

    def _join(self, left: pa.Table, right: pa.Table) -> pa.RecordBatch:
        """The output rows of whole windows: ``left`` and ``right`` sorted by (we, seq)."""
        lcols = left.select(range(len(self.inputs[0])))
        rcols = right.select(range(len(self.inputs[1])))
        li, ri = self.matcher.pairs(lcols, rcols, self.ctx.eval_context())
        lu = unmatched(left.num_rows, li) if self.pad_left else _NONE
        ru = unmatched(right.num_rows, ri) if self.pad_right else _NONE
        if len(lu):  # each in its place among the pairs, by left arrival
            li, ri = np.concatenate([li, lu]), np.concatenate([ri, np.full(len(lu), -1)])
            order = np.argsort(li, kind="stable")
            li, ri = li[order], ri[order]
        if len(ru):  # after the left-led rows of its window
            lwe = left.column("we").to_numpy()
            rwe = right.column("we").to_numpy()
            at = np.searchsorted(lwe[li], rwe[ru], side="right")
            li, ri = np.insert(li, at, -1), np.insert(ri, at, ru)
        return combine(self.schema, lcols, rcols, li, ri)


def _groups(lwe: np.ndarray, rwe: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Split two window-end-sorted sides into runs of whole windows of about GROUP_ROWS
    rows: ((left offset, length), (right offset, length)) per run.
    """
    if len(lwe) + len(rwe) <= GROUP_ROWS:
        return [((0, len(lwe)), (0, len(rwe)))]
    ends = np.union1d(lwe, rwe)
    lcut = np.searchsorted(lwe, ends, side="right")
    rcut = np.searchsorted(rwe, ends, side="right")
    out, lo, ro = [], 0, 0
    for lc, rc in zip(lcut.tolist(), rcut.tolist(), strict=True):  # a loop over windows
        if lc - lo + rc - ro >= GROUP_ROWS or (lc, rc) == (len(lwe), len(rwe)):
            out.append(((lo, lc - lo), (ro, rc - ro)))
            lo, ro = lc, rc
    return out


def _stored_schema(schema: pa.Schema) -> pa.Schema:
    fields = [pa.field(f"c{i}", f.type) for i, f in enumerate(schema)]
    return pa.schema([*fields, pa.field("we", pa.int64()), pa.field("seq", pa.int64())])


def _positional(schema: pa.Schema, name: str) -> str:
    return f"c{schema.get_field_index(name)}"
