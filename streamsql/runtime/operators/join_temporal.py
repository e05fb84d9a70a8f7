"""The event-time temporal join: each left row joins the right version valid at its time.

``JOIN versioned FOR SYSTEM_TIME AS OF s.ts`` (Flink's TemporalRowTimeJoinOperator). Left
rows wait until the watermark passes their time; then each joins the right row with the
same key whose time is the latest at or before the left row's (a later arrival wins a tie
on time). When that version is a retraction (-U/-D) there is no match; LEFT pads the rows
without one. Rows go out at the watermark, in left-time order (ties: arrival order).

Matching is one vectorized pass per watermark: keys become dense codes shared by both
sides, times become ranks, and the versions sorted by ``(code, rank, arrival)`` are
searched for every released left row at once (``np.searchsorted`` on ``code * ranks +
rank``). Versions at or before the watermark that a newer one at or before it shadows can
never be chosen again and are dropped. State lives in Arrow and is written to the
operator's DuckDB tables at every checkpoint barrier.

A checkpoint keeps the waiting left rows (table ``left``, keyed by the left hash keys) and
the versions (``versions``, keyed by the right ones), both with their input columns, and
the operator's own watermark and arrival counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.errors import ExecError
from streamsql.expr.promote import common_type
from streamsql.plan.changelog import DELETE, OP, UPDATE_BEFORE
from streamsql.plan.join_nodes import Join, TemporalJoin
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.join_pairs import PairMatcher, combine, input_hash_keys
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK, to_ms

T, SEQ, RETRACTS = "__t", "__seq", "__retracts"


class TemporalJoinOperator(Operator):
    """Input 0 is the probe stream (append-only), input 1 the versioned table's changelog.

    A left row at or before the watermark when it comes (or with a NULL time) is late and
    dropped; a right row with a NULL key or time is ignored.
    """

    def __init__(self, node: Join) -> None:
        assert isinstance(node.strategy, TemporalJoin) and node.kind in ("INNER", "LEFT")
        self.node = node
        self.left_time = node.strategy.left_time
        self.right_time = node.strategy.right_time
        self.matcher = PairMatcher(node.left_keys, node.right_keys, node.schema, node.condition)
        left, right = node.left.schema, node.right.schema
        self.key_types = []
        for a, b in zip(node.left_keys, node.right_keys, strict=True):
            typ = common_type([left.field(a).type, right.field(b).type])
            if typ is None:
                raise ExecError(f"temporal join: cannot compare key '{a}' with '{b}'")
            self.key_types.append(typ)
        extra = [(T, pa.int64()), (SEQ, pa.int64())]
        self.left_schema = pa.schema([*left, *extra])
        self.right_schema = pa.schema([*right, *extra, (RETRACTS, pa.bool_())])
        self.left = self.left_schema.empty_table()  # waiting left rows
        self.versions = self.right_schema.empty_table()
        self.fresh = False  # versions came since the last cleanup
        self.seq = 0
        self.watermark = MIN_WATERMARK
        self.peak = 0

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        tag = f"{ctx.state_prefix}_temporal_%s_i{ctx.instance}"
        self.tables = (
            ctx.state.create(tag % "left", self.left_schema),
            ctx.state.create(tag % "versions", self.right_schema),
        )

    # -- rows in ---------------------------------------------------------------------------

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        if not batch.num_rows:
            return ()
        if input_index == 0:
            self._add_left(batch)
        else:
            self._add_versions(batch)
        self._track_peak()
        return ()

    def _add_left(self, batch: pa.RecordBatch) -> None:
        times = to_ms(batch.column(self.left_time))
        on_time = pc.fill_null(pc.greater(times, self.watermark), False)
        if not pc.all(on_time).as_py():
            self.ctx.late(batch.filter(pc.invert(on_time)), self.watermark)
            batch, times = batch.filter(on_time), times.filter(on_time)
        rows = self._stamped(batch, times)
        self.left = pa.concat_tables([self.left, rows])

    def _add_versions(self, batch: pa.RecordBatch) -> None:
        ops = batch.column(OP) if OP in batch.schema.names else None
        if ops is not None:
            batch = batch.drop_columns([OP])
        times = to_ms(batch.column(self.right_time))
        usable = times.is_valid()
        for k in self.node.right_keys:
            usable = pc.and_(usable, batch.column(k).is_valid())  # NULL keys never match
        rows = self._stamped(batch, times)
        if ops is not None:
            flags = pc.is_in(ops, pa.array([UPDATE_BEFORE, DELETE], ops.type))
        else:
            flags = pa.array(np.zeros(batch.num_rows, dtype=bool))
        rows = rows.append_column(RETRACTS, flags).filter(usable)
        if rows.num_rows:
            self.versions = pa.concat_tables([self.versions, rows])
            self.fresh = True

    def _stamped(self, batch: pa.RecordBatch, times: pa.Array) -> pa.Table:
        seq = pa.array(np.arange(self.seq, self.seq + batch.num_rows, dtype=np.int64))
        self.seq += batch.num_rows
        return pa.Table.from_batches([batch]).append_column(T, times).append_column(SEQ, seq)

    # -- watermarks ------------------------------------------------------------------------

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        previous, self.watermark = self.watermark, max(self.watermark, watermark)
        out = self._release()
        times = self.versions.column(T).to_numpy()
        if self.fresh or ((times > previous) & (times <= self.watermark)).any():
            self._drop_shadowed()
        return out

    def close(self) -> Iterable[pa.RecordBatch]:
        return self.on_watermark(MAX_WATERMARK)

    def _release(self) -> list[pa.RecordBatch]:
        if not self.left.num_rows:
            return []
        due = pc.less_equal(self.left.column(T), self.watermark)
        ready = self.left.filter(due)
        if not ready.num_rows:
            return []
        self.left = self.left.filter(pc.invert(due))
        ready = ready.take(np.lexsort((_np(ready, SEQ), _np(ready, T))))
        ri = self._versions_at(ready)
        left = ready.drop_columns([T, SEQ])
        right = self.versions.drop_columns([T, SEQ, RETRACTS])
        li = np.arange(ready.num_rows)
        residual = self.matcher.residual
        if residual is not None and (ri >= 0).any():
            found = np.flatnonzero(ri >= 0)
            joined = combine(self.node.schema, left, right, found, ri[found])
            mask = residual.evaluate(joined, self.ctx.eval_context())
            keep = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
            ri[found[~keep]] = -1
        if self.node.kind == "INNER":
            li, ri = li[ri >= 0], ri[ri >= 0]
        if not len(li):
            return []
        return [combine(self.node.schema, left, right, li, ri)]

    def _versions_at(self, ready: pa.Table) -> np.ndarray:
        """For each row of ``ready``, the index of its version in ``self.versions``, or -1."""
        n = ready.num_rows
        if not self.versions.num_rows:
            return np.full(n, -1, dtype=np.int64)
        pairs = zip(self.node.left_keys, self.node.right_keys, self.key_types, strict=True)
        keys = [([ready.column(a), self.versions.column(b)], t) for a, b, t in pairs]
        code = _codes(keys, n + self.versions.num_rows)
        lt, vt = _np(ready, T), _np(self.versions, T)
        ranks, rank = np.unique(np.concatenate([vt, lt]), return_inverse=True)
        span = len(ranks)
        vcode, lcode = code[n:], code[:n]
        vkey = vcode * span + rank[: len(vt)]
        order = np.lexsort((_np(self.versions, SEQ), vkey))
        vkey = vkey[order]
        # the last version at or before each left row's (code, rank): a later arrival wins
        pos = np.searchsorted(vkey, lcode * span + rank[len(vt) :], side="right") - 1
        at = np.maximum(pos, 0)
        hit = (lcode >= 0) & (pos >= 0) & (vkey[at] // span == lcode)
        chosen = order[at]
        hit &= ~self.versions.column(RETRACTS).to_numpy(zero_copy_only=False)[chosen]
        return np.where(hit, chosen, -1)

    def _drop_shadowed(self) -> None:
        """Drop each version at or before the watermark that a later version at or before
        the watermark (the same key) replaces: no waiting or future left row can see it.
        """
        self.fresh = False
        versions = self.versions
        if versions.num_rows < 2:
            return
        pairs = zip(self.node.right_keys, self.key_types, strict=True)
        code = _codes([([versions.column(k)], t) for k, t in pairs], versions.num_rows)
        t = _np(versions, T)
        order = np.lexsort((_np(versions, SEQ), t, code))
        code, t = code[order], t[order]
        shadowed = np.zeros(len(order), dtype=bool)
        shadowed[:-1] = (code[:-1] == code[1:]) & (t[1:] <= self.watermark)
        if shadowed.any():
            self.versions = versions.take(np.sort(order[~shadowed]))

    # -- state -----------------------------------------------------------------------------

    def _track_peak(self) -> None:
        self.peak = max(self.peak, self.left.num_rows + self.versions.num_rows)
        self.ctx.metrics.extra["join_state_rows_peak"] = self.peak

    def on_barrier(self, epoch: int) -> None:
        for table, rows in zip(self.tables, (self.left, self.versions), strict=True):
            self.ctx.state.execute(f'DELETE FROM "{table}"')
            self.ctx.state.append(table, rows)

    def snapshot(self) -> OperatorSnapshot:
        values = {"watermark": self.watermark, "seq": self.seq, "fresh": self.fresh}
        snap = OperatorSnapshot({"left": self.left, "versions": self.versions}, values=values)
        for index, name in enumerate(("left", "versions")):
            keys = input_hash_keys(self.node, index)
            if keys:
                snap.keys[name] = keys
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        left = snapshot.table("left", self.left_schema)
        versions = snapshot.table("versions", self.right_schema)
        if left is not None:
            self.left = left.combine_chunks()
        if versions is not None:
            self.versions = versions.combine_chunks()
        if values:
            # Left rows up to the highest old watermark were released or are waiting here;
            # new ones come after every restored row.
            self.watermark = max(v["watermark"] for v in values)
            self.seq = max(v["seq"] for v in values)
            self.fresh = any(v["fresh"] for v in values)

    def describe_state(self) -> dict[str, int]:
        return {
            "temporal_left_rows": self.left.num_rows,
            "temporal_versions": self.versions.num_rows,
        }


def _codes(keys: list[tuple[list[pa.ChunkedArray], pa.DataType]], n: int) -> np.ndarray:
    """Dense codes of ``n`` rows of key columns, each given as parts joined end to end (so
    that both sides share the codes) and the type to compare them in: equal keys get equal
    codes, a row with a NULL key -1.
    """
    code = np.zeros(n, dtype=np.int64)
    for i, (parts, typ) in enumerate(keys):
        values = pa.concat_arrays([_array(p, typ) for p in parts])
        encoded = pc.dictionary_encode(values)
        number = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        number = number.astype(np.int64, copy=False)
        if i == 0:
            code = number
            continue
        code = np.where((code >= 0) & (number >= 0), code * len(encoded.dictionary) + number, -1)
        valid = code >= 0
        code[valid] = np.unique(code[valid], return_inverse=True)[1]  # keep codes small
    return code


def _array(values: pa.ChunkedArray | pa.Array, typ: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == typ else values.cast(typ)


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy()
