"""The event-time interval join: each arriving row joins the other side's buffered rows
whose time lies in the interval; rows leave state once the watermark rules out a match.

A pair matches when the keys are equal (NULL never equals), ``left_time + lower <=
right_time <= left_time + upper`` and the residual condition holds. Joined rows are emitted
when the later row of the pair arrives. A left row can no longer match once the watermark
reaches ``left_time + upper`` (a right row newer than the watermark is too late for it), a
right row once it reaches ``right_time - lower``: then the row leaves state and, on a
preserved (outer) side, is emitted NULL-padded if it never matched, so the output stays
append-only. Rows at or below the watermark when they arrive (or without a time) are late:
counted, routed to ``ctx.late`` and not joined, which keeps the result independent of batch
boundaries.

State layout: each side keeps its rows in a few *runs*: an Arrow batch in arrival order,
its keys' hashes and times (numpy), per row whether it matched (for outer padding) and
whether it expired, and an index, ``comp`` ascending: the high bits of the key hash above
the time's offset from the run's first time. The rows with one key and a time range are one
slice of the index, so a batch probes each run with two binary searches per row, in index
order: the work per batch follows the batch and its matches, not the whole state. A batch
becomes a run; runs of similar size merge (as in an LSM tree), so a side has O(log n)
runs. The watermark marks the expired rows of the runs that hold any; a run leaves when
all its rows expired and is rebuilt from its live rows when half did.

The live rows are written to the operator's DuckDB tables (``{prefix}_join_{left,right}_
i{instance}``: the side's columns as ``c0, c1, ...`` and ``__matched``) at checkpoint
barriers. Measured alternatives (bids, 262,144-row batches unless said): state kept in
DuckDB, joined per batch by DuckDB and deleted by watermark, took 2.1 s against 1.7 s here
for 5 M rows per side on (auction, bidder) within 1 s, 0.35 s against 0.13 s for 200 k
per side in 8,192-row batches, and 1.7 s against 0.6 s for 1 M per side on auction within
±2 s (5 M pairs). An equi join of each batch with the whole other side (``PairMatcher``),
time-filtered after, took 1.1 s on the first, 1.2 s on the last, and 12 s against 1.4 s
with 8,192-row batches and ±10 min: it hashes the whole state per batch and produces every
same-key pair before the time filter.

A checkpoint keeps each side's runs (tables ``left`` and ``right``, keyed by the stored
columns of that input's hash keys): their rows as ``c0, c1, ...``, ``__matched``,
``__alive`` (not expired) and ``__run`` (the run's place on its side), and each side's
expiry limit. A restore rebuilds the same runs, so that the output comes in the same
order (it follows the runs); at another parallelism the runs of one place are one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.expr import compile_predicate
from streamsql.plan.join_nodes import IntervalJoin, Join
from streamsql.runtime.hashing import hash_keys
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.join_pairs import combine, input_hash_keys
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK, to_ms

MATCHED, ALIVE, RUN = "__matched", "__alive", "__run"
_EMPTY = np.zeros(0, dtype=np.int64)
_NO_ROWS = np.zeros(0, dtype=bool)
#: More runs than this on a side: the two smallest neighbours merge.
MAX_RUNS = 12


class _Run:
    """Rows of one side, in arrival order, indexed by ``comp``: the high bits of the key
    hash, then the time (an offset from the run's first time, in the low ``shift`` bits),
    ascending; ``order`` is the row of each index entry. Rows with one key and a time
    range are one slice of the index, found by binary search; a key whose hash shares the
    high bits is weeded out later by comparing the keys.
    """

    def __init__(self, rows: pa.RecordBatch, h: np.ndarray, t: np.ndarray, matched: np.ndarray):
        self.rows, self.h, self.t, self.matched = rows, h, t, matched
        self.t0 = int(t.min())
        self.span = int(t.max()) - self.t0
        self.shift = np.uint64(self.span.bit_length())
        comp = (h >> self.shift << self.shift) | (t - self.t0).astype(np.uint64)
        self.order = np.argsort(comp)
        self.comp = comp[self.order]
        self.alive: np.ndarray | None = None  # per row, once some rows expired
        self.gone = 0  # rows expired
        self.low = self.t0  # no live row is older

    @property
    def size(self) -> int:
        return len(self.t)

    def probe(self, h: np.ndarray, t: np.ndarray, low: int, high: int):
        """Pairs (probe index, row) of probe rows and this run's rows with about the same
        key hash and ``t + low <= row time <= t + high``.
        """
        first = t + (low - self.t0)
        last = t + (high - self.t0)
        overlap = (last >= 0) & (first <= self.span)
        if overlap.all():
            inside = np.arange(len(t))
        else:
            inside = np.flatnonzero(overlap)
            if not len(inside):
                return _EMPTY, _EMPTY
            h, first, last = h[inside], first[inside], last[inside]
        prefix = h >> self.shift << self.shift
        first = np.maximum(first, 0).astype(np.uint64)
        last = np.minimum(last, self.span).astype(np.uint64)
        lo = np.searchsorted(self.comp, prefix | first, "left")
        hi = np.searchsorted(self.comp, prefix | last, "right")
        counts = hi - lo
        total = int(counts.sum())
        if not total:
            return _EMPTY, _EMPTY
        which = np.repeat(np.arange(len(inside)), counts)
        offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        return inside[which], self.order[lo[which] + offset]

    def expire(self, limit: int) -> np.ndarray:
        """Mark the rows with time <= limit expired; return those newly marked."""
        if self.low > limit:
            return _EMPTY
        if self.alive is None:
            self.alive = np.ones(self.size, dtype=bool)
        newly = np.flatnonzero(self.alive & (self.t <= limit))
        self.alive[newly] = False
        self.gone += len(newly)
        if self.gone < self.size:
            self.low = int(self.t[self.alive].min())
        return newly

    def live(self) -> np.ndarray:
        """The rows not yet expired."""
        return np.arange(self.size) if self.alive is None else np.flatnonzero(self.alive)

    def mark_alive(self, alive: np.ndarray) -> None:
        """Restore which rows had expired (``expire`` as it left them)."""
        if not alive.all():
            self.alive = alive.copy()
            self.gone = len(alive) - int(alive.sum())
            self.low = int(self.t[alive].min())

    def part(self, rows: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray, np.ndarray]:
        if len(rows) == self.size:
            return self.rows, self.h, self.t, self.matched
        return self.rows.take(pa.array(rows)), self.h[rows], self.t[rows], self.matched[rows]


class _Side:
    """One input's buffered rows. ``window``: a probe row at time t matches this side's
    rows with times in ``[t + window[0], t + window[1]]``; a row expires once the watermark
    reaches its time + ``expire_after``.
    """

    def __init__(
        self,
        keys: tuple[str, ...],
        time: str,
        schema: pa.Schema,
        *,
        preserved: bool,
        window: tuple[int, int],
        expire_after: int,
    ) -> None:
        self.keys, self.time, self.schema = keys, time, schema
        self.preserved = preserved
        self.window = window
        self.expire_after = expire_after
        self.limit = MIN_WATERMARK  # rows with time <= limit have expired
        self.runs: list[_Run] = []

    def rows(self) -> int:
        return sum(r.size for r in self.runs)

    def add(self, run: _Run) -> None:
        self.runs.append(run)
        # Runs of similar size merge: O(log n) runs, each row merged O(log n) times. A
        # small old run is not merged into a big new one: it is likely to expire first.
        runs = self.runs
        while len(runs) > 1 and runs[-1].size <= 2 * runs[-2].size <= 4 * runs[-1].size:
            b, a = runs.pop(), runs.pop()
            runs.append(_merge([a, b]))
        if len(runs) > MAX_RUNS:
            i = min(range(len(runs) - 1), key=lambda i: runs[i].size + runs[i + 1].size)
            runs[i : i + 2] = [_merge(runs[i : i + 2])]

    def expire(self, watermark: int) -> pa.RecordBatch | None:
        """Drop the rows the watermark expires; on a preserved side, return those of them
        that never matched.
        """
        if watermark >= MAX_WATERMARK:
            limit = MAX_WATERMARK
        else:
            limit = min(max(watermark - self.expire_after, MIN_WATERMARK), MAX_WATERMARK)
        if limit <= self.limit:
            return None
        self.limit = limit
        unmatched, kept = [], []
        for run in self.runs:
            newly = run.expire(limit)
            if self.preserved and len(newly):
                pos = np.sort(newly[~run.matched[newly]])
                if len(pos):
                    unmatched.append(run.rows.take(pa.array(pos)))
            if run.gone == run.size:
                continue
            kept.append(_merge([run]) if 2 * run.gone >= run.size else run)
        self.runs = kept
        return pa.concat_batches(unmatched) if unmatched else None

    def column(self, name: str) -> str:
        """The stored name of the input's column ``name`` (see ``live_table``)."""
        return f"c{self.schema.get_field_index(name)}"

    def live_table(self) -> pa.Table:
        """The rows that have not expired as ``c0, c1, ...`` (DuckDB ignores the case of
        names, which may clash) and their matched flag: what a barrier writes to DuckDB.
        """
        batches, flags = [], [np.zeros(0, dtype=bool)]
        for run in self.runs:
            rows, _, _, matched = run.part(run.live())
            batches.append(rows)
            flags.append(matched)
        names = [f"c{i}" for i in range(len(self.schema))]
        table = pa.Table.from_batches(batches, self.schema).rename_columns(names)
        return table.append_column(MATCHED, pa.array(np.concatenate(flags)))

    def runs_table(self) -> pa.Table:
        """Every row of every run, as ``live_table`` has them, with its run's place and
        whether it is alive: what a checkpoint stores. Expired rows a run still holds are
        kept, so that the restored runs are the same and merge as these would.
        """
        runs = self.runs
        names = [f"c{i}" for i in range(len(self.schema))]
        table = pa.Table.from_batches([r.rows for r in runs], self.schema).rename_columns(names)
        flags = {
            MATCHED: [r.matched for r in runs],
            ALIVE: [np.ones(r.size, bool) if r.alive is None else r.alive for r in runs],
        }
        for name, parts in flags.items():
            table = table.append_column(name, pa.array(np.concatenate([_NO_ROWS, *parts])))
        place = np.repeat(np.arange(len(runs)), [r.size for r in runs])
        return table.append_column(RUN, pa.array(place, pa.int64()))

    def load(self, table: pa.Table) -> None:
        """Rebuild the runs of ``runs_table`` (rows of one run place from several old
        instances become one run).
        """
        if not table.num_rows:
            return
        table = table.combine_chunks()
        columns = [c.chunk(0) for c in table.columns[: len(self.schema)]]
        rows = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        h = hash_keys(rows, self.keys)
        t = pc.fill_null(to_ms(rows.column(self.time)), 0).to_numpy(zero_copy_only=False)
        matched = table.column(MATCHED).to_numpy(zero_copy_only=False)
        alive = table.column(ALIVE).to_numpy(zero_copy_only=False)
        place = table.column(RUN).to_numpy()
        for p in np.unique(place):  # a loop over runs: a dozen or so
            at = np.flatnonzero(place == p)
            if alive[at].any():
                run = _Run(rows.take(pa.array(at)), h[at], t[at], matched[at].copy())
                run.mark_alive(alive[at])
                self.runs.append(run)


def _merge(runs: list[_Run]) -> _Run:
    """One run of the live rows of ``runs``."""
    parts = [r.part(r.live()) for r in runs]
    rows = pa.concat_batches([p[0] for p in parts])
    return _Run(rows, *(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3)))


class IntervalJoinOperator(Operator):
    """Runs a :class:`Join` with the :class:`IntervalJoin` strategy (append-only output)."""

    def __init__(self, node: Join) -> None:
        s = node.strategy
        assert isinstance(s, IntervalJoin)
        self.node = node
        self.schema = node.schema
        self.watermark_delay_ms = node.watermark_delay_ms
        left, right = node.left.schema, node.right.schema
        self.sides = (
            _Side(
                node.left_keys,
                s.left_time,
                left,
                preserved=node.kind in ("LEFT", "FULL"),
                window=(-s.upper_ms, -s.lower_ms),
                expire_after=s.upper_ms,
            ),
            _Side(
                node.right_keys,
                s.right_time,
                right,
                preserved=node.kind in ("RIGHT", "FULL"),
                window=(s.lower_ms, s.upper_ms),
                expire_after=-s.lower_ms,
            ),
        )
        self.key_pairs = list(zip(node.left_keys, node.right_keys, strict=True))
        self.residual = (
            compile_predicate(node.condition, self.schema) if node.condition is not None else None
        )
        self.peak = 0

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        self.tables = [
            ctx.state.create(
                f"{ctx.state_prefix}_join_{name}_i{ctx.instance}",
                side.live_table().schema,
            )
            for name, side in zip(self.node.state_tables(), self.sides, strict=True)
        ]
        ctx.metrics.extra["join_state_rows_peak"] = 0

    # -- rows in ---------------------------------------------------------------------------

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        side, other = self.sides[input_index], self.sides[1 - input_index]
        batch, t = self._on_time(_conform(batch, side.schema), side.time)
        if not batch.num_rows:
            return ()
        # The batch is indexed as a run first: probing in index order, the binary searches
        # in the other side's runs go nearly sequentially (and stay in cache), and the run
        # is what this side keeps.
        h = hash_keys(batch, side.keys)
        run = _Run(batch, h, t, np.zeros(batch.num_rows, dtype=bool))
        keyed = _keys_valid(batch, side.keys)
        probes = run.order[keyed[run.order]]  # rows with a key, in index order
        out = []
        for theirs in other.runs:
            mine, pos = theirs.probe(h[probes], t[probes], *other.window)
            if not len(mine):
                continue
            mine = probes[mine]
            if input_index == 0:
                joined = combine(self.schema, batch, theirs.rows, mine, pos)
            else:
                joined = combine(self.schema, theirs.rows, batch, pos, mine)
            keep = self._holds(joined)
            if not keep.all():
                joined, mine, pos = joined.filter(pa.array(keep)), mine[keep], pos[keep]
            run.matched[mine] = True
            theirs.matched[pos] = True
            out.append(joined)
        # A row the watermark expired already (a negative upper bound) cannot wait for
        # a later row: it is padded now or dropped.
        expired = t <= side.limit
        if side.preserved and expired.any():
            pad = batch.filter(pa.array(expired & ~run.matched))
            out.append(self._padded(input_index, pad))
        store = ~expired if side.preserved else ~expired & keyed  # no key: never joins
        if store.all():
            side.add(run)
        elif store.any():
            side.add(_Run(*run.part(np.flatnonzero(store))))
        self.peak = max(self.peak, self.sides[0].rows() + self.sides[1].rows())
        self.ctx.metrics.extra["join_state_rows_peak"] = self.peak
        return _one(out)

    def _on_time(self, batch: pa.RecordBatch, time: str) -> tuple[pa.RecordBatch, np.ndarray]:
        """The rows that are not late, with their times (epoch ms)."""
        times = to_ms(batch.column(time))
        t = pc.fill_null(times, 0).to_numpy(zero_copy_only=False)
        wm = self.ctx.watermark
        late = times.is_null().to_numpy(zero_copy_only=False)
        if wm != MIN_WATERMARK:
            late |= t <= wm
        if late.any():
            self.ctx.late(batch.filter(pa.array(late)), wm)
            batch, t = batch.filter(pa.array(~late)), t[~late]
        return batch, t

    def _holds(self, joined: pa.RecordBatch) -> np.ndarray:
        """Which candidate pairs (equal key hashes, times in bounds) really match: equal
        keys and the residual condition.
        """
        mask = None
        for lk, rk in self.key_pairs:
            eq = pc.equal(joined.column(lk), joined.column(rk))
            mask = eq if mask is None else pc.and_kleene(mask, eq)
        if self.residual is not None:
            holds = self.residual.evaluate(joined, self.ctx.eval_context())
            mask = holds if mask is None else pc.and_kleene(mask, holds)
        if mask is None:
            return np.ones(joined.num_rows, dtype=bool)
        return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)

    def _padded(self, input_index: int, rows: pa.RecordBatch) -> pa.RecordBatch:
        """``rows`` of one side joined with NULLs for the other."""
        other = self.sides[1 - input_index].schema.empty_table()
        idx, none = np.arange(rows.num_rows), np.full(rows.num_rows, -1)
        if input_index == 0:
            return combine(self.schema, rows, other, idx, none)
        return combine(self.schema, other, rows, none, idx)

    # -- watermarks ------------------------------------------------------------------------

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        out = []
        for i, side in enumerate(self.sides):
            unmatched = side.expire(watermark)
            if unmatched is not None and unmatched.num_rows:
                out.append(self._padded(i, unmatched))
        return _one(out)

    def close(self) -> Iterable[pa.RecordBatch]:
        return self.on_watermark(MAX_WATERMARK)

    # -- state -----------------------------------------------------------------------------

    def on_barrier(self, epoch: int) -> None:
        for table, side in zip(self.tables, self.sides, strict=True):
            self.ctx.state.execute(f'DELETE FROM "{table}"')
            self.ctx.state.append(table, side.live_table())

    def snapshot(self) -> OperatorSnapshot:
        limits = [side.limit for side in self.sides]
        snap = OperatorSnapshot(values={"limits": limits})
        for index, (name, side) in enumerate(
            zip(self.node.state_tables(), self.sides, strict=True)
        ):
            snap.tables[name] = side.runs_table()
            keys = input_hash_keys(self.node, index)
            if keys:
                snap.keys[name] = tuple(side.column(k) for k in keys)
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        for index, (name, side) in enumerate(
            zip(self.node.state_tables(), self.sides, strict=True)
        ):
            rows = snapshot.table(name, side.runs_table().schema)
            if rows is not None:
                side.load(rows)
            # Rows an old instance had not expired yet that the highest limit expires go
            # out at the next watermark that raises it.
            side.limit = max((v["limits"][index] for v in values), default=side.limit)

    def describe_state(self) -> dict[str, int]:
        """Rows held per side (expired rows stay in a run until half of it expired)."""
        return {"join_left_rows": self.sides[0].rows(), "join_right_rows": self.sides[1].rows()}


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly the input's schema, so that runs concatenate."""
    if batch.schema.equals(schema):
        return batch
    columns = [
        c if c.type == f.type else c.cast(f.type)
        for c, f in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _keys_valid(batch: pa.RecordBatch, keys: tuple[str, ...]) -> np.ndarray:
    valid = np.ones(batch.num_rows, dtype=bool)
    for k in keys:
        col = batch.column(k)
        if col.null_count:
            valid &= col.is_valid().to_numpy(zero_copy_only=False)
    return valid


def _one(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    batches = [b for b in batches if b.num_rows]
    return [pa.concat_batches(batches)] if len(batches) > 1 else batches
