"""Updating window results: the changelog from what a window operator emitted to its new
rows, how long fired windows are kept ('table.exec.emit.allow-lateness'), and the clock of
early firing ('table.exec.emit.early-fire.*').
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.changelog import DELETE, INSERT, OP, OP_TYPE, UPDATE_AFTER, UPDATE_BEFORE
from streamsql.runtime.operators.window_state import fire_limit
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK


def keep_limit(watermark: int, lateness_ms: int) -> int:
    """Windows ending at or before this are past their allowed lateness: their state is
    dropped and rows for them are late. A window is kept until the watermark passes
    ``end - 1 + lateness``; with no lateness this is :func:`fire_limit`.

    >>> keep_limit(10_999, 1000), keep_limit(10_999, 0)
    (10000, 11000)
    """
    if watermark >= MAX_WATERMARK:
        return fire_limit(watermark)
    return fire_limit(max(watermark - lateness_ms, MIN_WATERMARK))


def with_op(rows: pa.Table, op: int) -> pa.Table:
    """The rows with an ``_op`` column of one kind."""
    return rows.append_column(OP, pa.array(np.full(rows.num_rows, op, np.int8), OP_TYPE))


def changes(old: pa.Table, new: pa.Table, key: list[str]) -> pa.Table:
    """The changelog that turns the ``old`` rows into the ``new`` ones (one schema, a key
    at most once on each side): +I for a new key, -U then +U for a key whose row changed,
    -D for a key that is gone, nothing for a row that stayed the same. The keys that are gone
    come first, then the others in the order of ``new``. Keys match NULL to NULL.

    >>> old = pa.table({"k": ["a", "b", None], "n": [1, 2, 3]})
    >>> new = pa.table({"k": [None, "a", "c"], "n": [3, 5, 1]})
    >>> [(r["k"], r["n"], r["_op"]) for r in changes(old, new, ["k"]).to_pylist()]
    [('b', 2, 3), ('a', 1, 1), ('a', 5, 2), ('c', 1, 0)]
    """
    n_old = old.num_rows
    if n_old == 0:
        return with_op(new, INSERT)
    both = pa.concat_tables([old, new.cast(old.schema)]).combine_chunks()
    index = both.select(key).append_column("__pos", pa.array(np.arange(both.num_rows)))
    pairs = index.group_by(key, use_threads=False).aggregate([("__pos", "min"), ("__pos", "max")])
    lo = pairs.column("__pos_min").to_numpy()
    hi = pairs.column("__pos_max").to_numpy()
    fresh, gone = lo >= n_old, hi < n_old
    kept = ~fresh & ~gone
    values = both.select([c for c in both.column_names if c not in key])
    same = _rows_equal(values.take(pa.array(lo[kept])), values.take(pa.array(hi[kept])))
    before, after = lo[kept][~same], hi[kept][~same]
    take = np.concatenate([lo[gone], before, after, lo[fresh]])
    ops = np.concatenate(
        [
            np.full(gone.sum(), DELETE),
            np.full(len(before), UPDATE_BEFORE),
            np.full(len(after), UPDATE_AFTER),
            np.full(fresh.sum(), INSERT),
        ]
    ).astype(np.int8)
    # The keys that are gone first; then in new's order, each -U right before its +U.
    rank = np.concatenate([lo[gone] * 2 - 2 * len(both), after * 2, after * 2 + 1, lo[fresh] * 2])
    order = np.argsort(rank, kind="stable")
    out = both.take(pa.array(take[order]))
    return out.append_column(OP, pa.array(ops[order], OP_TYPE))


def _rows_equal(a: pa.Table, b: pa.Table) -> np.ndarray:
    """Row-wise equality of two aligned tables, NULL equal to NULL."""
    same = np.ones(a.num_rows, dtype=bool)
    for x, y in zip(a.columns, b.columns, strict=True):
        eq = pc.fill_null(pc.equal(x, y), False)
        eq = pc.or_(eq, pc.and_(pc.is_null(x), pc.is_null(y)))
        same &= eq.to_numpy(zero_copy_only=False)
    return same


class EarlyFiring:
    """When an operator emits the partial results of its open windows: ``delay_ms`` of
    processing time (``clock``, epoch ms) after the first change since it last did.
    """

    def __init__(self, delay_ms: int, clock: Callable[[], int]) -> None:
        assert delay_ms > 0
        self.delay_ms = delay_ms
        self.clock = clock
        self.due_at: int | None = None  # None: nothing changed since the last firing

    def changed(self) -> None:
        if self.due_at is None:
            self.due_at = self.clock() + self.delay_ms

    def due(self) -> bool:
        """Whether to fire now (it then waits for the next change)."""
        if self.due_at is None or self.clock() < self.due_at:
            return False
        self.due_at = None
        return True
