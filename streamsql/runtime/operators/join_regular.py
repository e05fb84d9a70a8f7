"""Regular (unbounded) stream-stream join: both inputs' rows are kept in state and each
arriving batch is probed, whole, against the other side's rows, with the results Flink's
StreamingJoinOperator gives row by row.

State is one DuckDB table per side (``{prefix}_join_{left,right}_i{instance}``) holding
*entries*: the side's columns, stored as ``c0, c1, ...`` (input names may clash in DuckDB,
which ignores case), then

- ``__id``: the entry's number on its side; an entry is rewritten under the same number;
- ``__h``: a hash of the row (updating sides only), which keep one entry per distinct row
  so that a retraction finds it (by hash, then exact equality); an append-only side's rows
  are never looked up again, so each arrival is an entry of its own;
- ``__n``: copies of the row the entry holds;
- ``__a``: each copy's matches in the other side's state (outer sides only): a row whose
  matches drop to zero is NULL-padded again, one that gets its first match has its padded
  row retracted;
- ``__t``: when the entry was last written (processing time, for 'table.exec.state.ttl').

New and rewritten entries wait in an Arrow write buffer (probed like the table) that moves
into DuckDB once it holds FLUSH_ROWS rows and at every checkpoint barrier; entries taken
out of the table meanwhile are remembered by number and skipped when it is read.

A batch comes from one side, so the other side's entries are fixed while it is processed
and each of its rows has the same matches wherever it is in the batch. What depends on
order (a retraction of a copy added earlier in the batch, a preserved row's first or last
match) is replayed with running sums per distinct row or per matched entry; the output rows
are then sorted into the order one-row-at-a-time processing emits them.

A checkpoint keeps each side's entries as stored (table ``left`` or ``right``, keyed by
the stored columns of that input's hash keys, whose values and types are the input's) and
the next TTL sweep; a restore loads the entries into DuckDB, numbered anew (see
``Entries.load``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.changelog import DELETE, INSERT, OP, UPDATE_BEFORE
from streamsql.plan.join_nodes import Join, RegularJoin
from streamsql.plan.nodes import PlanNode
from streamsql.runtime.hashing import hash_keys
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.join_pairs import (
    PairMatcher,
    combine,
    input_hash_keys,
    with_ops,
)
from streamsql.runtime.operators.join_state import Entries
from streamsql.runtime.snapshot import OperatorSnapshot

#: Processing time (ms) between sweeps for expired entries when a state TTL is set;
#: entries that expire in between are already skipped by every read.
TTL_SWEEP_MS = 1000

_I64 = np.int64
_FALSE = pa.scalar(False)


@dataclass
class _Side:
    """One input of the join."""

    name: str
    schema: pa.Schema  # the input's columns
    keys: list[str]  # join keys, as stored column names
    updating: bool  # the input carries retractions
    outer: bool  # a row without a match is emitted NULL-padded
    entries: Entries | None = None

    @property
    def columns(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.schema))]

    def column(self, name: str) -> str:
        """The stored name of the input's column ``name``."""
        return f"c{self.schema.get_field_index(name)}"

    @property
    def stored(self) -> pa.Schema:
        fields = [pa.field(c, f.type) for c, f in zip(self.columns, self.schema, strict=True)]
        extra = ["__id", *(["__h"] if self.updating else []), "__n"]
        extra += [*(["__a"] if self.outer else []), "__t"]
        return pa.schema([*fields, *(pa.field(c, pa.int64()) for c in extra)])


def _side(name: str, node: PlanNode, keys: tuple[str, ...], outer: bool) -> _Side:
    schema = node.schema
    stored_keys = [f"c{schema.get_field_index(k)}" for k in keys]
    return _Side(name, schema, stored_keys, node.mode.updating, outer)


@dataclass
class _Values:
    """The distinct rows of a batch from an updating side, and their entries in state."""

    data: pa.Table  # one row each
    hashes: np.ndarray
    group: np.ndarray  # per batch row: which distinct row it is
    old_id: np.ndarray  # the live entry's number, -1 for none
    count: np.ndarray  # copies before the batch
    assoc: np.ndarray  # the entry's matches (outer sides)
    final: np.ndarray | None = None  # copies after the batch

    def matches(self, per_row: np.ndarray) -> np.ndarray:
        """Each distinct row's matches: the stored count while an entry is there (it may
        count a partner that has expired since), else what the probe found.
        """
        found = np.zeros(len(self.count), _I64)
        found[self.group] = per_row
        return np.where(self.count > 0, self.assoc, found)


#: Output rows as parallel arrays: the input row that emits it, this side's row and the
#: other side's entry (-1 for NULLs), its place among that input row's outputs (padded
#: rows retracted, joined rows, padded rows restored) and its row kind.
_Piece = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class RegularJoinOperator(Operator):
    def __init__(self, node: Join) -> None:
        assert isinstance(node.strategy, RegularJoin), node.strategy
        self.node = node
        self.schema = node.schema
        self.updating = node.mode.updating
        self.sides = (
            _side("left", node.left, node.left_keys, node.kind in ("LEFT", "FULL")),
            _side("right", node.right, node.right_keys, node.kind in ("RIGHT", "FULL")),
        )
        lk, rk = (tuple(s.keys) for s in self.sides)
        self.matcher = PairMatcher(lk, rk, node.schema, node.condition)

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        for side in self.sides:
            name = f"{ctx.state_prefix}_join_{side.name}_i{ctx.instance}"
            side.entries = Entries(ctx.state, ctx.state.create(name, side.stored), side.stored)
        ttl = ctx.settings["table.exec.state.ttl"] if ctx.settings is not None else 0
        self.ttl_ms = int(ttl or 0)
        self.next_sweep: int | None = None
        ctx.metrics.extra["join_state_rows_peak"] = 0

    def on_barrier(self, epoch: int) -> None:
        for side in self.sides:
            side.entries.flush()

    def snapshot(self) -> OperatorSnapshot:
        snap = OperatorSnapshot(values={"next_sweep": self.next_sweep})
        for index, side in enumerate(self.sides):
            snap.tables[side.name] = side.entries.snapshot()
            keys = input_hash_keys(self.node, index)
            if keys:
                snap.keys[side.name] = tuple(side.column(k) for k in keys)
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        for side in self.sides:
            entries = snapshot.table(side.name, side.stored)
            if entries is not None:
                side.entries.load(entries)
        sweeps = [v["next_sweep"] for v in values if v.get("next_sweep") is not None]
        self.next_sweep = min(sweeps, default=None)

    def describe_state(self) -> dict[str, int]:
        left, right = (s.entries.rows for s in self.sides)
        return {"join_left_rows": left, "join_right_rows": right}

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        this, other = self.sides[input_index], self.sides[1 - input_index]
        now = self.ctx.now_ms()
        live = self._expire(now)
        rows = pa.Table.from_arrays([batch.column(f.name) for f in this.schema], this.columns)
        if OP in batch.schema.names:
            kinds = batch.column(OP).to_numpy()
            sign = np.where((kinds == UPDATE_BEFORE) | (kinds == DELETE), -1, 1)
        else:
            sign = np.ones(batch.num_rows, _I64)
        if not this.outer and this.keys:  # a row with a NULL key never shows
            valid = _keys_valid(rows, this.keys)
            if not valid.all():
                rows, sign = rows.filter(valid), sign[valid]
        values = None
        if this.updating and rows.num_rows:
            values = self._lookup(this, rows, live)
            effective, values.final = _walk(values.group, sign, values.count)
            if not effective.all():  # retractions of rows that are not there
                rows, sign = rows.filter(effective), sign[effective]
                values.group = values.group[effective]
        if not rows.num_rows:
            return ()
        found = self._probe(this, other, rows, live)
        data = found.select(other.columns)
        ectx = self.ctx.eval_context()
        if input_index == 0:
            j, o = self.matcher.pairs(rows, data, ectx)
        else:
            o, j = self.matcher.pairs(data, rows, ectx)
        copies = found.column("__n").to_numpy()
        matches = np.bincount(j, weights=copies[o], minlength=len(rows)).astype(_I64)
        pieces = [_joined(j, o, copies, sign)]
        if this.outer:
            assoc = values.matches(matches)[values.group] if values is not None else matches
            pieces.append(_padded_here(sign, matches, assoc))
        if other.outer and len(j):
            piece, touched, assoc = _padded_there(j, o, copies, sign, found.column("__a"))
            pieces.append(piece)
            self._rewrite(other, found, touched, assoc, now)
        self._store(this, rows, values, matches, now)
        self._note_peak()
        tj, to, ops = _ordered(pieces, found.column("__id").to_numpy())
        if not len(tj):
            return ()
        left, right = ((rows, tj), (data, to)) if input_index == 0 else ((data, to), (rows, tj))
        out = combine(self.schema, left[0], right[0], left[1], right[1])
        return [with_ops(out, ops) if self.updating else out]

    # -- state ---------------------------------------------------------------------------------

    def _expire(self, now: int) -> int | None:
        """Delete the entries untouched for the TTL (a sweep at most every TTL_SWEEP_MS) and
        return the oldest write time still live (None without a TTL).
        """
        if not self.ttl_ms:
            return None
        live = now - self.ttl_ms + 1
        if self.next_sweep is None or now >= self.next_sweep:
            self.next_sweep = now + TTL_SWEEP_MS
            expired = sum(side.entries.expire(live) for side in self.sides)
            if expired:
                self.ctx.metrics.add("state_rows_expired", expired)
        return live

    def _lookup(self, side: _Side, rows: pa.Table, live: int | None) -> _Values:
        """The batch's distinct rows and their live entries (found by hash, then equality)."""
        hashes = hash_keys(rows, side.columns).view(_I64)
        uniq, first, group = np.unique(hashes, return_index=True, return_inverse=True)
        data = rows.take(first)
        n = len(uniq)
        values = _Values(data, uniq, group.ravel(), np.full(n, -1, _I64), *_zeros(2, n))
        found = side.entries.find(["__h"], pa.table({"h": uniq}), live)
        if found.num_rows:
            at = np.searchsorted(uniq, found.column("__h").to_numpy())
            same = _rows_equal(found.select(side.columns), data.take(at))
            found, at = found.filter(same), at[same]
            values.old_id[at] = found.column("__id").to_numpy()
            values.count[at] = found.column("__n").to_numpy()
            if side.outer:
                values.assoc[at] = found.column("__a").to_numpy()
        return values

    def _probe(self, this: _Side, other: _Side, rows: pa.Table, live: int | None) -> pa.Table:
        """The other side's live entries whose keys occur among ``rows``' keys."""
        if not this.keys:
            return other.entries.find([], None, live)
        keys = pa.table({f"k{i}": rows.column(k) for i, k in enumerate(this.keys)})
        keys = keys.filter(_keys_valid(keys, keys.column_names))
        return other.entries.find(other.keys, keys, live)  # (a semi join: repeats are fine)

    def _store(
        self, side: _Side, rows: pa.Table, values: _Values | None, matches: np.ndarray, now: int
    ) -> None:
        """Write this side's new and changed entries."""
        entries = side.entries
        if values is None:  # append-only: an entry per row
            entries.add(_entries(side, rows, entries.ids(len(rows)), None, 1, matches, now))
            return
        entries.drop(values.old_id[values.count > 0])
        keep = np.flatnonzero(values.final > 0)
        if not len(keep):
            return
        ids = values.old_id[keep]
        fresh = ids < 0
        ids[fresh] = entries.ids(int(fresh.sum()))
        assoc = values.matches(matches)[keep]
        data = values.data.take(keep)
        entries.add(_entries(side, data, ids, values.hashes[keep], values.final[keep], assoc, now))

    def _rewrite(
        self, side: _Side, found: pa.Table, touched: np.ndarray, assoc: np.ndarray, now: int
    ) -> None:
        """Store new match counts for the other side's entries ``touched``."""
        changed = found.take(touched)
        side.entries.drop(changed.column("__id").to_numpy())
        at = side.stored.get_field_index("__a")
        changed = changed.set_column(at, "__a", pa.array(assoc, pa.int64()))
        at = side.stored.get_field_index("__t")
        changed = changed.set_column(at, "__t", pa.array(np.full(len(touched), now, _I64)))
        side.entries.add(changed)

    def _note_peak(self) -> None:
        extra = self.ctx.metrics.extra
        total = sum(side.entries.rows for side in self.sides)
        extra["join_state_rows_peak"] = max(extra.get("join_state_rows_peak", 0), total)


# -- vectorized pieces -------------------------------------------------------------------------


def _zeros(k: int, n: int) -> list[np.ndarray]:
    return [np.zeros(n, _I64) for _ in range(k)]


def _keys_valid(table: pa.Table, keys: list[str]) -> np.ndarray:
    valid = np.ones(table.num_rows, bool)
    for k in keys:
        column = table.column(k)
        if column.null_count:
            valid &= pc.is_valid(column).to_numpy(zero_copy_only=False)
    return valid


def _rows_equal(a: pa.Table, b: pa.Table) -> np.ndarray:
    """Row-wise equality of two aligned tables, NULL equal to NULL."""
    equal = np.ones(a.num_rows, bool)
    for x, y in zip(a.columns, b.columns, strict=True):
        same = pc.or_(pc.fill_null(pc.equal(x, y), _FALSE), pc.and_(pc.is_null(x), pc.is_null(y)))
        if pa.types.is_floating(x.type):
            same = pc.or_(same, pc.and_(pc.is_nan(x), pc.is_nan(y)))
        equal &= pc.fill_null(same, _FALSE).to_numpy(zero_copy_only=False)
    return equal


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``keys``: where each run of equal keys starts, and each element's run."""
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    return first, np.cumsum(first) - 1


def _walk(group: np.ndarray, sign: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replay each distinct row's changes, in order, from its stored copies ``start``: a
    retraction when no copy is left is ignored (the row expired, or never came).

    Returns whether each change takes effect and each distinct row's copies at the end.

    >>> _walk(np.array([0, 0, 0, 1]), np.array([-1, 1, -1, 1]), np.array([0, 2]))
    (array([False,  True,  True,  True]), array([0, 3]))
    """
    order = np.argsort(group, kind="stable")
    g, s = group[order], sign[order]
    first, run = _segments(g)
    total = np.cumsum(s)
    level = total - (total - s)[first][run] + start[g]  # copies after each change, unclamped
    # Clamped at zero, the count is the unclamped one less its lowest point below zero so
    # far; one running minimum serves all rows when each row's run is shifted below the last.
    span = int(level.max() - min(level.min(), 0)) + 1
    low = np.minimum.accumulate(level - run * span) + run * span
    after = level - np.minimum(low, 0)
    before = np.where(first, start[g], np.roll(after, 1))
    effective = np.empty(len(g), bool)
    effective[order] = (s > 0) | (before > 0)
    final = start.copy()
    last = np.append(first[1:], True)
    final[g[last]] = after[last]
    return effective, final


def _joined(j: np.ndarray, o: np.ndarray, copies: np.ndarray, sign: np.ndarray) -> _Piece:
    """A joined row per pair and copy of the other side's row: +I for an accumulating row,
    -D for a retracting one.
    """
    n = copies[o]
    tj, to = np.repeat(j, n), np.repeat(o, n)
    ops = np.where(sign[tj] > 0, INSERT, DELETE)
    return tj, tj, to, np.ones(len(tj), np.int8), ops


def _padded_here(sign: np.ndarray, matches: np.ndarray, assoc: np.ndarray) -> _Piece:
    """This (preserved) side's NULL-padded rows: +I for an arriving row without a match,
    -D for a leaving row that had none.
    """
    add = np.flatnonzero((sign > 0) & (matches == 0))
    drop = np.flatnonzero((sign < 0) & (assoc == 0))
    tj = np.concatenate([add, drop])
    sec = np.concatenate([np.ones(len(add), np.int8), np.zeros(len(drop), np.int8)])
    ops = np.concatenate([np.full(len(add), INSERT), np.full(len(drop), DELETE)])
    return tj, tj, np.full(len(tj), -1, _I64), sec, ops


def _padded_there(
    j: np.ndarray, o: np.ndarray, copies: np.ndarray, sign: np.ndarray, stored: pa.ChunkedArray
) -> tuple[_Piece, np.ndarray, np.ndarray]:
    """The other (preserved) side's NULL-padded rows, replayed pair by pair in input order:
    -D for each copy of an entry getting its first match (before the joined rows), +I for
    each copy of one losing its last (after them). Also returns the matched entries and
    their new match counts.
    """
    order = np.lexsort((j, o))
    po, pj = o[order], j[order]
    s = sign[pj]
    first, run = _segments(po)
    total = np.cumsum(s)
    before = stored.to_numpy()[po] + (total - s) - (total - s)[first][run]
    gained = (s > 0) & (before == 0)
    lost = (s < 0) & (before == 1)
    flagged = np.flatnonzero(gained | lost)
    n = copies[po[flagged]]
    at, to = np.repeat(pj[flagged], n), np.repeat(po[flagged], n)
    lost_rows = np.repeat(lost[flagged], n)
    sec = np.where(lost_rows, 2, 0).astype(np.int8)
    ops = np.where(lost_rows, INSERT, DELETE)
    last = np.append(first[1:], True)
    piece = (at, np.full(len(at), -1, _I64), to, sec, ops)
    return piece, po[last], before[last] + s[last]


def _ordered(
    pieces: list[_Piece], other_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The output rows (this side's row, the other side's entry, row kind) in the order
    processing the input rows one at a time emits them; one input row's matches come in
    the order of the other side's entry numbers.
    """
    at, tj, to, sec, ops = (np.concatenate(parts) for parts in zip(*pieces, strict=True))
    rank = np.empty(len(other_ids) + 1, _I64)  # entry -> place by number, NULLs first
    rank[np.argsort(other_ids, kind="stable") + 1] = np.arange(1, len(other_ids) + 1)
    rank[0] = 0
    width = len(other_ids) + 1
    key = (at * 3 + sec) * width + rank[to + 1]  # one key sorts faster than three
    order = np.argsort(key, kind="stable")
    return tj[order], to[order], ops[order].astype(np.int8)


def _entries(
    side: _Side,
    data: pa.Table,
    ids: np.ndarray,
    hashes: np.ndarray | None,
    copies: np.ndarray | int,
    assoc: np.ndarray,
    now: int,
) -> pa.Table:
    """State entries for ``data``: its columns and the bookkeeping columns."""
    n = data.num_rows
    extra = {"__id": ids, "__h": hashes, "__n": np.broadcast_to(np.asarray(copies, _I64), n)}
    extra |= {"__a": assoc, "__t": np.full(n, now, _I64)}
    names = side.stored.names[len(side.columns) :]
    arrays = [*data.columns, *(pa.array(extra[c], pa.int64()) for c in names)]
    return pa.Table.from_arrays(arrays, schema=side.stored)
