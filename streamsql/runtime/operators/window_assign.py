"""Window assignment for the TUMBLE, HOP and CUMULATE table functions (stateless)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from streamsql.plan.nodes import WindowSpec, WindowTVF
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.timeutil import from_ms, to_ms


def tumble_starts(times_ms: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """The start of the tumbling window each time falls in (floor towards -inf).

    >>> tumble_starts(np.array([-1, 0, 2999, 3000]), WindowSpec("TUMBLE", "ts", 3000)).tolist()
    [-3000, 0, 0, 3000]
    """
    # Floor division by a constant is several times faster than np.mod (numpy divides by a
    # scalar with multiplications).
    off = spec.offset_ms
    return (times_ms - off) // spec.size_ms * spec.size_ms + off


def assign_windows(
    times_ms: np.ndarray, spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each (row, window) pair: the row's index, the window start and end (epoch ms).

    A row belongs to one TUMBLE window, to size/slide HOP windows, and to every CUMULATE
    window of its period whose end lies after it.

    >>> rows, starts, ends = assign_windows(np.array([1500]), WindowSpec("HOP", "ts", 2000, 1000))
    >>> rows.tolist(), starts.tolist(), ends.tolist()
    ([0, 0], [1000, 0], [3000, 2000])
    """
    t = times_ms
    if spec.kind == "TUMBLE":
        start = tumble_starts(t, spec)
        return np.arange(len(t), dtype=np.int64), start, start + spec.size_ms
    idx = np.arange(len(t), dtype=np.int64)
    if spec.kind == "HOP":
        last = t - np.mod(t - spec.offset_ms, spec.slide_ms)
        n = spec.size_ms // spec.slide_ms
        starts = np.concatenate([last - k * spec.slide_ms for k in range(n)])
        return np.tile(idx, n), starts, starts + spec.size_ms
    # CUMULATE: windows [base, base + step * j) for j = 1 .. size / step
    base = t - np.mod(t - spec.offset_ms, spec.size_ms)
    rows, starts, ends = [], [], []
    for j in range(1, spec.size_ms // spec.slide_ms + 1):
        end = base + j * spec.slide_ms
        hit = end > t
        rows.append(idx[hit])
        starts.append(base[hit])
        ends.append(end[hit])
    return np.concatenate(rows), np.concatenate(starts), np.concatenate(ends)


class WindowAssignOperator(Operator):
    """Adds window_start, window_end and window_time (= window_end - 1 ms) to each row,
    repeating a row once per window it belongs to.
    """

    def __init__(self, node: WindowTVF) -> None:
        self.spec = node.window
        self.schema = node.schema

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        times = to_ms(batch.column(self.spec.time_col)).to_numpy(zero_copy_only=False)
        rows, starts, ends = assign_windows(times, self.spec)
        base = batch if self.spec.kind == "TUMBLE" else batch.take(pa.array(rows))
        arrays = [*base.columns, from_ms(starts), from_ms(ends), from_ms(ends - 1)]
        return [pa.RecordBatch.from_arrays(arrays, schema=self.schema)]
