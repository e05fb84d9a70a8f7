"""SESSION window aggregation: sessions per partition key that grow and merge as rows come.

A row at time t opens the interval [t, t + gap); intervals of one partition that overlap
or touch form one session [first t, last t + gap), as in Flink. The operator keeps the open
sessions as partial aggregates, one row per (session, group key). Each batch is merged in
one vectorized pass: the batch's rows, as one-row sessions, join the open sessions, all
are sorted by (partition, start), and a segmented running maximum of the ends marks where
a new session begins. A session is emitted once the watermark passes its last millisecond
(end - 1). A row whose merged session would already have fired is late.

With allowed lateness ('table.exec.emit.allow-lateness') a fired session is kept until
the watermark passes ``end - 1 + lateness``, and the output is an update stream: a late row
that grows (or joins) fired sessions retracts their emitted rows (-U, or -D when the
session's bounds changed) and emits the merged session (+U, or +I) at once.

The open sessions live in Arrow between checkpoints and are written to the operator's
DuckDB table at every checkpoint barrier. A checkpoint keeps them with the partition keys
as the input has them (NULLs back), which the input is hashed on, and the ``fired`` mark.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.changelog import INSERT
from streamsql.plan.nodes import AggCall, WindowAggregate
from streamsql.runtime.operators.accumulate import sum_input
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.group_keys import GroupKeys
from streamsql.runtime.operators.window_agg import window_output
from streamsql.runtime.operators.window_emit import changes, keep_limit, with_op
from streamsql.runtime.operators.window_partials import final
from streamsql.runtime.operators.window_state import fire_limit
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MIN_WATERMARK, to_ms

WS, WE = "ws", "we"


class SessionWindowOperator(Operator):
    def __init__(self, node: WindowAggregate) -> None:
        assert node.assigns and node.window.is_session
        assert not node.emit.early_fire_ms, "the binder refuses early firing of sessions"
        self.node = node
        self.gap = node.window.size_ms
        self.time_col = node.window.time_col
        schema = node.input.schema
        self.keys = GroupKeys(node.keys, schema)
        self.key_cols = self.keys.state_columns if node.keys else []
        positions = [node.keys.index(p) for p in node.window.partition]
        self.partition = [c for i in positions for c in (f"k{i}", f"k{i}_null")]
        self.partials = [p for i, a in enumerate(node.aggs) for p in _partial_specs(i, a)]
        self.open_sessions: pa.Table | None = None
        self.updating = node.emit.updating
        self.lateness = node.emit.allow_lateness_ms
        self.fired = MIN_WATERMARK  # sessions ending at or before this have fired
        names = node.schema.names  # the upsert key: window_start, window_end, group keys
        self.out_key = [names[0], names[1], *names[3 : 3 + len(node.keys)]]

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        empty = self._row_sessions(self.node.input.schema.empty_table())
        self.state_schema = empty.schema
        self.open_sessions = empty
        self.table = ctx.state.create(
            f"{ctx.state_prefix}_window_agg_sessions_i{ctx.instance}", self.state_schema
        )

    # -- rows in ---------------------------------------------------------------------------

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        if batch.num_rows == 0:
            return ()
        rows = self._row_sessions(batch)
        assert self.open_sessions is not None
        n_open = self.open_sessions.num_rows
        merged, gid, session_we = self._merge(pa.concat_tables([self.open_sessions, rows]))
        wm = self.ctx.watermark
        if wm != MIN_WATERMARK:
            closed = session_we <= keep_limit(wm, self.lateness)  # per merged session
            if closed.any():
                # Only rows of this batch can form a session that closed already: a kept
                # session ends after the limit, and merging only makes it longer.
                self.ctx.late(batch.filter(pa.array(closed[gid[n_open:]])), wm)
                merged = merged.filter(pa.array(~closed[merged.column("__gid").to_numpy()]))
        before = self.open_sessions
        self.open_sessions = merged.drop_columns(["__gid"]).cast(self.state_schema)
        if not self.updating:
            return ()
        return self._late_updates(before, gid[:n_open], gid[n_open:], merged, session_we)

    def _late_updates(
        self,
        before: pa.Table,
        old_gid: np.ndarray,
        new_gid: np.ndarray,
        merged: pa.Table,
        session_we: np.ndarray,
    ) -> list[pa.RecordBatch]:
        """Changes of the fired sessions the batch's rows went into: what was emitted for
        them, replaced by the sessions they are now part of (those fire at once if they
        ended already, or at their close).
        """
        touched = np.zeros(len(session_we), dtype=bool)
        touched[new_gid] = True
        emitted = before.column(WE).to_numpy() <= self.fired
        old = before.filter(pa.array(emitted & touched[old_gid]))
        g = merged.column("__gid").to_numpy()
        new = merged.filter(pa.array(touched[g] & (session_we[g] <= self.fired)))
        if not old.num_rows and not new.num_rows:
            return []
        out = changes(self._output(old), self._output(new.drop_columns(["__gid"])), self.out_key)
        return out.to_batches()

    def _row_sessions(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """Each row as a session of its own: [t, t + gap) with the row's partials."""
        t = to_ms(batch.column(self.time_col))
        cols: dict[str, pa.Array] = dict(self.keys.state_arrays(batch)) if self.key_cols else {}
        cols[WS] = t
        cols[WE] = pc.add(t, pa.scalar(self.gap, pa.int64()))
        for name, values in self._row_partials(batch):
            cols[name] = values
        return pa.table(cols)

    def _row_partials(self, batch: pa.RecordBatch | pa.Table):
        """(column, values) of every partial for each row on its own."""
        n = batch.num_rows
        for i, a in enumerate(self.node.aggs):
            mask = pc.fill_null(_col(batch, a.filter), False) if a.filter else None
            values = None if a.arg is None else _col(batch, a.arg)
            if mask is not None and values is not None:
                values = pc.if_else(mask, values, pa.nulls(n, values.type))
            for name, fn in _partial_specs(i, a):
                if values is None:  # COUNT(*): one per row (that passes the FILTER)
                    ones = pa.array(np.ones(n, np.int64))
                    out = ones if mask is None else mask.cast(pa.int64())
                elif a.func == "COUNT" or name.endswith("_c_sum"):
                    out = pc.is_valid(values).cast(pa.int64())
                elif fn == "sum":
                    out = sum_input(values)
                else:
                    out = values
                yield name, out

    def _merge(self, sessions: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """Sessions of one partition that overlap or touch, merged: one row per (merged
        session, group key), with ``__gid`` the merged session's number. Also returns each
        input row's merged session number, and each merged session's end.
        """
        order = pc.sort_indices(sessions, [(c, "ascending") for c in (*self.partition, WS)])
        ordered = sessions.take(order)
        n = ordered.num_rows
        ws = ordered.column(WS).to_numpy()
        we = ordered.column(WE).to_numpy()
        new_partition = _run_starts(ordered, self.partition)
        reach = _segmented_cummax(we, new_partition)  # furthest end so far in the partition
        starts = new_partition.copy()
        starts[1:] |= ws[1:] > reach[:-1]
        gid_sorted = np.cumsum(starts) - 1
        first = np.flatnonzero(starts)
        last = np.append(first[1:] - 1, n - 1)
        session_ws, session_we = ws[first], reach[last]
        with_gid = ordered.append_column("__gid", pa.array(gid_sorted, pa.int64()))
        specs = [(name, fn) for name, fn in self.partials]
        grouped = with_gid.group_by(["__gid", *self.key_cols], use_threads=False).aggregate(specs)
        renames = {f"{name}_{fn}": name for name, fn in specs}
        grouped = grouped.rename_columns([renames.get(c, c) for c in grouped.column_names])
        g = grouped.column("__gid").to_numpy()
        grouped = grouped.append_column(WS, pa.array(session_ws[g], pa.int64()))
        grouped = grouped.append_column(WE, pa.array(session_we[g], pa.int64()))
        gid = np.empty(n, np.int64)
        gid[order.to_numpy()] = gid_sorted
        names = [*self.key_cols, WS, WE, *(name for name, _ in specs), "__gid"]
        return grouped.select(names), gid, session_we

    # -- firing ------------------------------------------------------------------------------

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        """Emit the sessions the watermark closes; drop those past their lateness."""
        assert self.open_sessions is not None
        limit, fired = fire_limit(watermark), self.fired
        self.fired = max(fired, limit)
        if self.open_sessions.num_rows == 0:
            return ()
        ends = self.open_sessions.column(WE)
        due = pc.and_(pc.less_equal(ends, limit), pc.greater(ends, fired))
        kept = pc.greater(ends, keep_limit(watermark, self.lateness))
        out = self.open_sessions.filter(due)
        self.open_sessions = self.open_sessions.filter(kept)
        if not out.num_rows:
            return ()
        out = self._output(out)
        return (with_op(out, INSERT) if self.updating else out).to_batches()

    def _output(self, fired: pa.Table) -> pa.Table:
        order = pc.sort_indices(fired, [(WE, "ascending"), (WS, "ascending")])
        fired = fired.take(order)
        keys = self.keys.restore(fired) if self.key_cols else []
        aggs = [final(i, a, fired) for i, a in enumerate(self.node.aggs)]
        starts = fired.column(WS).combine_chunks()
        ends = fired.column(WE).combine_chunks()
        return window_output(self.node.schema, starts, ends, keys, aggs)

    # -- state -------------------------------------------------------------------------------

    def on_barrier(self, epoch: int) -> None:
        assert self.open_sessions is not None
        self.ctx.state.execute(f'DELETE FROM "{self.table}"')
        self.ctx.state.append(self.table, self.open_sessions)

    def snapshot(self) -> OperatorSnapshot:
        """The open sessions (fired ones too while within their lateness) and the ``fired``
        mark. State holds keys NULL-free (see GroupKeys), which hash unlike the input's
        keys: the hashed keys go along decoded, as ``__hash{j}`` columns.
        """
        assert self.open_sessions is not None
        hashed = self._hashed_keys()
        table = self.open_sessions
        if hashed:
            decoded = self.keys.restore(table)
            for j, i in enumerate(hashed):
                table = table.append_column(f"__hash{j}", decoded[i])
        keys = {"sessions": tuple(f"__hash{j}" for j in range(len(hashed)))} if hashed else {}
        return OperatorSnapshot({"sessions": table}, keys, {"fired": self.fired})

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        """Take the open sessions back, and the largest ``fired`` mark (every old instance
        saw the same watermarks).
        """
        table = snapshot.table("sessions")
        if table is not None:
            table = table.select(self.state_schema.names).cast(self.state_schema)
            self.open_sessions = table
        self.fired = max((v["fired"] for v in values), default=MIN_WATERMARK)

    def _hashed_keys(self) -> list[int]:
        """Positions (in ``node.keys``) of the keys the exchange in front of the operator
        hashes: its ``shuffle_keys``, which choose_grouping_keys sets to the partition.
        """
        shuffle = self.node.shuffle_keys
        if shuffle is None:
            shuffle = self.node.window.partition
        return [self.node.keys.index(k) for k in shuffle]

    def describe_state(self) -> dict[str, int]:
        rows = self.open_sessions.num_rows if self.open_sessions is not None else 0
        return {"session_state_rows": rows}


def _partial_specs(i: int, a: AggCall) -> list[tuple[str, str]]:
    """(column, merge aggregate) of each partial of ``a``, named as ``final`` reads them."""
    p = f"p{i}"
    match a.func:
        case "COUNT" | "SUM":
            return [(f"{p}_sum", "sum")]
        case "AVG":
            return [(f"{p}_s_sum", "sum"), (f"{p}_c_sum", "sum")]
        case _:
            fn = a.func.lower()
            return [(f"{p}_{fn}", fn)]


def _col(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    values = batch.column(name)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _run_starts(ordered: pa.Table, columns: list[str]) -> np.ndarray:
    """True where a row's ``columns`` differ from the row before (and at row 0)."""
    n = ordered.num_rows
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
    for c in columns:
        values = ordered.column(c).combine_chunks()
        if n > 1:
            starts[1:] |= pc.not_equal(values.slice(1), values.slice(0, n - 1)).to_numpy(
                zero_copy_only=False
            )
    return starts


def _segmented_cummax(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` that restarts where ``starts`` is True.

    Each value is lifted by its segment's number times a span larger than the values'
    range, so one running maximum over the whole array never crosses a segment; when that
    would overflow, a log-step scan does the same.
    """
    if len(values) == 0:
        return values
    seg = np.cumsum(starts) - 1
    low = int(values.min())
    span = int(values.max()) - low + 1
    if int(seg[-1]) * span < 2**62:
        lifted = (values - low) + seg * span
        return np.maximum.accumulate(lifted) - seg * span + low
    out = values.copy()
    shift = 1
    while shift < len(out):
        same = seg[shift:] == seg[:-shift]
        out[shift:] = np.where(same, np.maximum(out[shift:], out[:-shift]), out[shift:])
        shift *= 2
    return out
