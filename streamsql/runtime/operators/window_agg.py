"""Window aggregation: partial aggregates per batch, merged and emitted at window close.

Per batch, rows of windows that already fired are dropped as late (``ctx.late``); the rest
are pre-aggregated per (window end, key) with pyarrow into a write buffer, which moves into
the operator's DuckDB state table once it holds FLUSH_ROWS rows and at every checkpoint
barrier. When the watermark passes a window's end, that window's partials (from the buffer
and from DuckDB) are merged, emitted once (append-only) and deleted.

DISTINCT aggregates keep their (window, key, value) rows apart; at merge time they join the
partials in one group-by, as extra rows whose other columns are NULL.

A global phase (``node.phase``, two-phase aggregation) receives a local phase's partial
rows instead of raw rows: it drops the late ones (counting the rows they stand for) and
keeps the others as its partials.

With allowed lateness or early firing ('table.exec.emit.*', the node's ``emit``) the results
are updates: windows are computed from the partials left in state, and ``WindowUpdates``
decides when and turns them into changes.

A checkpoint keeps the state tables' rows (``partials``, ``distinct{i}``, and ``emitted``
for updates) keyed by the group keys the input is hashed on, so that they can move to
another parallelism, and the watermark-derived marks as values (see ``snapshot``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.local_window_agg import partial_columns
from streamsql.plan.nodes import SLICE_END, SLICE_ROWS, WindowAggregate, WindowSpec
from streamsql.runtime.operators.accumulate import sum_input
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.pane_grid import slide_panes
from streamsql.runtime.operators.window_emit import keep_limit
from streamsql.runtime.operators.window_partials import (
    ONLY_VALID,
    col,
    final,
    merge_specs,
    partial_names,
    partial_table,
    slice_ends,
)
from streamsql.runtime.operators.window_state import WindowState, fire_limit
from streamsql.runtime.operators.window_updates import WindowUpdates
from streamsql.runtime.scalars import ONE, i64
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MIN_WATERMARK, from_ms, to_ms

# Windows covering at most this many panes fire by copying each pane into its windows.
FEW_PANES = 8


class WindowAggOperator(Operator):
    def __init__(self, node: WindowAggregate) -> None:
        self.node = node
        self.spec = node.window
        self.keys = node.keys
        self.key_cols = [f"k{i}" for i in range(len(node.keys))]
        self.group = ["we", *self.key_cols]
        self.plain = [(i, a) for i, a in enumerate(node.aggs) if not a.distinct]
        self.distinct = [(i, a) for i, a in enumerate(node.aggs) if a.distinct]
        self.schema = node.schema
        # A HOP window aggregate keeps partials per pane (a slide-long slice): a row is
        # aggregated once, and each window combines the size/slide panes it covers.
        self.panes = node.assigns and node.window.kind == "HOP"
        self.fired_through = MIN_WATERMARK  # end of the last window fired (panes only)
        self.updates: WindowUpdates | None = None  # set when the results are updates

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        empty = self.node.input.schema.empty_table()
        schemas = {kind: rows.schema for kind, rows in self._rows(empty).items()}
        assert tuple(schemas) == tuple(k for k in self.node.state_tables() if k != "emitted")
        tables = {
            kind: ctx.state.create(f"{ctx.state_prefix}_window_agg_{kind}_i{ctx.instance}", schema)
            for kind, schema in schemas.items()
        }
        self.windows = WindowState(ctx.state, tables, schemas)
        if self.node.emit.updating:
            self.updates = WindowUpdates(self, self.node.emit, ctx, self.schema, len(self.keys))

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        added = self._rows(batch)
        for kind, rows in added.items():
            self.windows.add(kind, rows)
        if self.updates is None:
            return ()
        ends = added["partials"].column("we")
        if not len(ends):
            return _batches(self.updates.flush())
        bounds = pc.min_max(ends).as_py()
        first, last = bounds["min"], bounds["max"]
        if self.panes:  # a pane is part of the windows ending size - slide after it
            last += self.spec.size_ms - self.spec.slide_ms
        return _batches(self.updates.added(first, last))

    def flush(self) -> Iterable[pa.RecordBatch]:
        return _batches(self.updates.flush()) if self.updates is not None else ()

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        if self.updates is not None:
            return _batches(self.updates.on_watermark(watermark))
        limit = fire_limit(watermark)
        merged = self._fire_panes(limit) if self.panes else self._fire(limit)
        return merged.to_batches() if merged is not None and merged.num_rows else ()

    def window_rows(self, after: int, upto: int) -> pa.Table | None:
        """Output rows of the windows ending in ``(after, upto]`` that hold rows, from the
        partials left in state (for updating results).
        """
        pending = self.windows.pending
        if not self.panes:
            if not any(after < e <= upto for e in pending):
                return None
            return self._merge(self.windows.read(after, upto))
        slide, size = self.spec.slide_ms, self.spec.size_ms
        if not pending:
            return None
        first = max(min(pending), self._grid_floor(after) + slide)
        last = min(upto, max(pending) + size - slide)
        if first > last:
            return None
        return self._pane_windows(first, first + (last - first) // slide * slide)

    def purge(self, limit: int) -> None:
        """Drop the partials that only windows ending at or before ``limit`` need."""
        size, slide = self.spec.size_ms, self.spec.slide_ms
        self.windows.discard(limit - size + slide if self.panes else limit)

    def _fire_panes(self, limit: int) -> pa.Table | None:
        """Fire the HOP windows ending by ``limit``: each combines the panes it covers;
        panes that no later window needs are dropped.
        """
        slide, size = self.spec.slide_ms, self.spec.size_ms
        pending = self.windows.pending
        first = max(min(pending, default=limit), self.fired_through + slide)
        last = min(limit, max(pending, default=limit) + size - slide)  # later ones are empty
        # Every window ending by the limit has fired, also those that held no rows: a row
        # that comes for them later only counts in the windows still open.
        self.fired_through = max(self.fired_through, self._grid_floor(limit))
        if not pending or first > last:
            return None
        fired = self._pane_windows(first, first + (last - first) // slide * slide)
        self.windows.take(self.fired_through - size + slide)  # panes all of whose windows fired
        return fired

    def _grid_floor(self, t: int) -> int:
        """The last window end at or before ``t``: window ends are the panes' ends, the
        offset plus a multiple of the slide.
        """
        return t - (t - self.spec.offset_ms) % self.spec.slide_ms

    def _pane_windows(self, first: int, last: int) -> pa.Table:
        """The HOP windows ending in ``[first, last]`` (on the panes' grid), each the
        combination of the panes it covers.
        """
        slide, size = self.spec.slide_ms, self.spec.size_ms
        # With few panes per window, each pane is copied into its windows and all merge in
        # one group-by. With many, windows fire in groups of about sqrt(size/slide): each
        # group combines its shared panes once, and each window adds the group's few
        # others (g panes per window instead of size/slide).
        k = size // slide
        fired, start = [], first
        if k <= FEW_PANES:
            fired, start = [self._fire_copies(first, last)], last + slide
        group = max(1, round(math.sqrt(k))) * slide
        while start <= last:
            end = min(last, start + group - slide)
            fired.append(self._fire_group(start, end))
            start = end + slide
        return pa.concat_tables(fired)

    def _fire_copies(self, first: int, last: int) -> pa.Table:
        """The windows ending in ``[first, last]``: on a dense grid of panes by key when it
        applies, else every pane copied into each of its windows and merged.
        """
        slide, size = self.spec.slide_ms, self.spec.size_ms
        panes = self.windows.read(first - size, last)
        if not self.distinct:
            specs = [("__n", "sum")] + [s[:2] for i, a in self.plain for s in merge_specs(i, a)]
            window = (first, last, slide, size)
            merged = slide_panes(panes["partials"], self.key_cols, specs, window)
            if merged is not None:
                return self._output(merged)
        return self._merge(
            {k: _into_windows(rows, first, last, slide, size) for k, rows in panes.items()}
        )

    def _fire_group(self, first: int, last: int) -> pa.Table:
        """The windows ending in ``[first, last]``: the panes they all cover are combined
        once, and each window adds only its own few panes to that.
        """
        slide, size = self.spec.slide_ms, self.spec.size_ms
        panes = self.windows.read(first - size, last)
        shared = {k: _between(rows, last - size, first) for k, rows in panes.items()}
        common = self._combine(shared, we=first)
        span = last - first + slide  # the combined row counts for every window of the group
        per_window = {
            k: pa.concat_tables(
                [
                    _into_windows(common[k], first, last, slide, span),
                    _into_windows(_between(rows, None, last - size), first, last, slide, size),
                    _into_windows(_between(rows, first, None), first, last, slide, size),
                ]
            )
            for k, rows in panes.items()
        }
        return self._merge(per_window)

    def _combine(self, parts: dict[str, pa.Table], we: int) -> dict[str, pa.Table]:
        """Partials of several panes combined into one partial row per key (and distinct
        values deduplicated), all stamped with window end ``we``.
        """
        out: dict[str, pa.Table] = {}
        keys = self.key_cols
        for kind, rows in parts.items():
            if kind == "partials":
                specs: list[tuple] = [("__n", "sum")]
                for i, a in self.plain:
                    specs += merge_specs(i, a)
                merged = rows.group_by(keys, use_threads=False).aggregate(specs)
                names = {f"{s[0]}_{s[1]}": s[0] for s in specs}
                merged = merged.rename_columns([names.get(c, c) for c in merged.column_names])
            else:
                value = next(c for c in rows.column_names if c.startswith("v"))
                merged = rows.group_by([*keys, value], use_threads=False).aggregate([])
            merged = merged.append_column("we", pa.array(np.full(merged.num_rows, we), pa.int64()))
            out[kind] = merged.select(self.windows.schemas[kind].names).cast(
                self.windows.schemas[kind]
            )
        return out

    def _fire(self, limit: int) -> pa.Table | None:
        if not self.windows.due(limit):
            return None
        return self._merge(self.windows.take(limit))

    def on_barrier(self, epoch: int) -> None:
        # The snapshot takes the write buffer as it is: no need to move it into DuckDB.
        if self.updates is not None:
            self.updates.flush_state()

    def snapshot(self) -> OperatorSnapshot:
        """Every state table's rows, keyed by the columns holding the keys the input is
        hashed on, and the fired-through mark of panes (windows ending by it fired, also
        empty ones: a pane row arriving after a restore must not fire them again).
        """
        hashed = self._hashed_keys()
        tables = self.windows.contents()
        keys = {kind: tuple(self.key_cols[i] for i in hashed) for kind in tables} if hashed else {}
        snap = OperatorSnapshot(tables, keys, {"fired_through": self.fired_through})
        if self.updates is not None:
            emitted = self.updates.snapshot(hashed)
            snap.tables |= emitted.tables
            snap.keys |= emitted.keys
            snap.values |= emitted.values
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        """Put the rows back into the state tables and take the marks: every old instance
        saw the same watermarks, so their marks agree and the largest is safe.
        """
        self.windows.load({k: t for k, t in snapshot.tables.items() if k != "emitted"})
        self.fired_through = max((v["fired_through"] for v in values), default=MIN_WATERMARK)
        if self.updates is not None:
            self.updates.restore(snapshot, values)

    def _hashed_keys(self) -> list[int]:
        """Positions (in ``node.keys``) of the keys the exchange in front of the operator
        hashes: its ``shuffle_keys``, which choose_grouping_keys sets to the group keys.
        """
        shuffle = self.node.shuffle_keys if self.node.shuffle_keys is not None else self.keys
        return [self.keys.index(k) for k in shuffle]

    def describe_state(self) -> dict[str, int]:
        state = {
            "window_agg_state_rows": self.windows.rows(),
            "open_windows": len(self.windows.pending),
        }
        return state | (self.updates.describe_state() if self.updates is not None else {})

    # -- per batch ---------------------------------------------------------------------------

    def _windows(
        self, batch: pa.RecordBatch | pa.Table
    ) -> tuple[pa.RecordBatch | pa.Table, np.ndarray]:
        """The rows (repeated once per window when the operator assigns windows) with the
        end of the window each belongs to, less the rows of windows that already fired.
        """
        given = batch
        batch, copies, ends = slice_ends(batch, self.spec, self.node.assigns)
        late = self._late(ends)
        if late is not None:
            self.ctx.late(_late_rows(given, copies, late), self.ctx.watermark)
            keep = ~late
            batch, ends = batch.filter(pa.array(keep)), ends[keep]
        return batch, ends

    def _late(self, ends: np.ndarray) -> np.ndarray | None:
        """Which rows of these window (or pane) ends are late: every window the row
        belongs to has fired, and is past its allowed lateness. None when none is.
        """
        wm = self.ctx.watermark
        if wm == MIN_WATERMARK or not len(ends):
            return None
        last = ends + (self.spec.size_ms - self.spec.slide_ms) if self.panes else ends
        late = last <= keep_limit(wm, self.node.emit.allow_lateness_ms)
        return late if late.any() else None

    def _rows(self, batch: pa.RecordBatch | pa.Table) -> dict[str, pa.Table]:
        """What one batch adds to state: partial aggregates per (window end, key), and per
        DISTINCT aggregate its distinct (window end, key, value) rows.
        """
        if self.node.phase == "global":
            return {"partials": self._global_partials(batch)}
        batch, ends = self._windows(batch)
        base = {"we": pa.array(ends, pa.int64())}
        for name, key in zip(self.key_cols, self.keys, strict=True):
            base[name] = col(batch, key)
        out = {"partials": partial_table(batch, base, self.plain)}
        for i, a in self.distinct:
            values = col(batch, a.arg)
            if a.func in ("SUM", "AVG"):
                values = sum_input(values)
            rows = pa.table({**base, f"v{i}": values})
            keep = pc.is_valid(values)
            if a.filter:
                keep = pc.and_(keep, pc.fill_null(col(batch, a.filter), False))
            rows = rows.filter(keep)
            out[f"distinct{i}"] = rows.group_by(
                [*self.group, f"v{i}"], use_threads=False
            ).aggregate([])
        return out

    def _global_partials(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """A global phase's input (a local phase's partial rows) as the partials it keeps, less
        the late ones: the input rows each stands for count as late rows dropped.
        """
        ends = to_ms(col(batch, SLICE_END)).to_numpy(zero_copy_only=False)
        late = self._late(ends)
        if late is not None:
            self.ctx.late_counted(int(pc.sum(col(batch, SLICE_ROWS).filter(late)).as_py()))
            batch, ends = batch.filter(pa.array(~late)), ends[~late]
        arrays = [pa.array(ends, pa.int64()), *(col(batch, k) for k in self.keys)]
        arrays.append(col(batch, SLICE_ROWS))
        names = [*self.group, "__n"]
        for i, a in self.plain:
            arrays += [col(batch, name) for name in partial_columns(i, a)]
            names += partial_names(i, a)
        return pa.table(arrays, names=names)

    def _merge(self, taken: dict[str, pa.Table]) -> pa.Table:
        """One group-by over the partials and the (deduplicated) distinct rows."""
        parts = [taken["partials"]]
        for i, _ in self.distinct:
            rows = taken[f"distinct{i}"]
            parts.append(rows.group_by([*self.group, f"v{i}"], use_threads=False).aggregate([]))
        union = pa.concat_tables(parts, promote_options="default")
        specs: list[tuple] = [("__n", "sum")]
        for i, a in self.plain:
            specs += merge_specs(i, a)
        for i, a in self.distinct:
            v = f"v{i}"
            specs.append((v, "count", ONLY_VALID) if a.func == "COUNT" else (v, "sum"))
            if a.func == "AVG":
                specs.append((v, "count", ONLY_VALID))
        # Single-threaded grouping keeps first-seen order: the output order is stable.
        merged = union.group_by(self.group, use_threads=False).aggregate(specs)
        return self._output(merged)

    def _output(self, merged: pa.Table) -> pa.Table:
        ends = col(merged, "we")
        starts = pa.array(window_starts(ends.to_numpy(zero_copy_only=False), self.spec))
        keys = [col(merged, k) for k in self.key_cols]
        aggs = [final(i, a, merged) for i, a in enumerate(self.node.aggs)]
        return window_output(self.schema, starts, ends, keys, aggs)


def _batches(tables: list[pa.Table]) -> list[pa.RecordBatch]:
    return [b for t in tables for b in t.to_batches() if b.num_rows]


def window_output(
    schema: pa.Schema, starts: pa.Array, ends: pa.Array, keys: list[pa.Array], aggs: list
) -> pa.Table:
    """A window aggregate's rows: window_start, window_end, window_time (end - 1 ms) from
    epoch milliseconds, then the group keys and the aggregates, in ``schema``'s types.
    """
    arrays = [from_ms(starts), from_ms(ends), from_ms(pc.subtract(ends, ONE)), *keys, *aggs]
    out = [
        arr.cast(f.type) if arr.type != f.type else arr
        for arr, f in zip(arrays, schema, strict=True)
    ]
    return pa.Table.from_arrays(out, schema=schema)


def _late_rows(
    given: pa.RecordBatch | pa.Table, copies: np.ndarray | None, late: np.ndarray
) -> pa.RecordBatch | pa.Table:
    """The given rows dropped as late. When a row was copied into each of its windows
    (CUMULATE), only a row without any on-time copy is: the others still reach a window.
    """
    if copies is None:
        return given.filter(pa.array(late))
    placed = np.zeros(given.num_rows, dtype=bool)
    placed[copies] = True
    on_time = np.zeros(given.num_rows, dtype=bool)
    on_time[copies[~late]] = True
    return given.filter(pa.array(placed & ~on_time))


def _between(rows: pa.Table, low: int | None, high: int | None) -> pa.Table:
    """The pane rows with ``low < we <= high`` (None: unbounded on that side)."""
    we = rows.column("we")
    keep = None
    if low is not None:
        keep = pc.greater(we, i64(low))
    if high is not None:
        upto = pc.less_equal(we, i64(high))
        keep = upto if keep is None else pc.and_(keep, upto)
    return rows if keep is None else rows.filter(keep)


def _into_windows(rows: pa.Table, first: int, last: int, slide: int, size: int) -> pa.Table:
    """Pane rows repeated once per window (ending in ``[first, last]``) they belong to, with
    ``we`` the window's end: a pane ending at p is part of the windows ending at p, p +
    slide, ..., p + size - slide.
    """
    panes = rows.column("we").to_numpy(zero_copy_only=False)
    low = np.maximum(panes, first)
    high = np.minimum(panes + size - slide, last)
    count = np.where(high >= low, (high - low) // slide + 1, 0)
    take = np.repeat(np.arange(len(panes)), count)
    starts = np.repeat(np.cumsum(count) - count, count)
    ends = low[take] + (np.arange(len(take)) - starts) * slide
    out = rows.take(pa.array(take))
    return out.set_column(out.schema.get_field_index("we"), "we", pa.array(ends, pa.int64()))


def window_starts(ends: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """The start of each window from its end: end - size for TUMBLE and HOP; for CUMULATE
    the start of the period the end falls in.
    """
    if spec.kind != "CUMULATE":
        return ends - spec.size_ms
    last = ends - 1
    return last - np.mod(last - spec.offset_ms, spec.size_ms)
