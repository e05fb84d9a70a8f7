"""A chain of operators fused in one task: each one's output is the next one's input."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pyarrow as pa

from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK

#: Seconds between samples of the operators' state sizes (a count query on state tables):
#: taken on a watermark, on the instance's own thread, and always before the end of input
#: fires what is left, so that a bounded run reports the state it held.
STATE_SAMPLE_S = 0.5


def delayed(watermark: int, delay_ms: int) -> int:
    """``watermark`` held back by ``delay_ms``; the end of input (+inf) stays the end."""
    if not delay_ms or watermark in (MAX_WATERMARK, MIN_WATERMARK):
        return watermark
    return max(watermark - delay_ms, MIN_WATERMARK)


class Chain(Operator):
    """Runs ``ops`` back to back, counting rows and batches for each member."""

    def __init__(self, ops: list[Operator], contexts: list[OperatorContext]) -> None:
        self.ops = ops
        self.contexts = contexts
        self.sampled = time.monotonic()  # when state sizes were last sampled

    def open(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        for op, c in zip(self.ops, self.contexts, strict=True):
            op.open(c)

    @property
    def done(self) -> bool:  # type: ignore[override]
        """A member needs no more input: nor does the chain (it only feeds that member)."""
        return any(op.done for op in self.ops)

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> list[pa.RecordBatch]:
        return self._push(0, [batch], input_index)

    def _push(self, start: int, batches: Iterable[pa.RecordBatch], input_index: int = 0) -> list:
        current = [b for b in batches if b.num_rows]
        for i in range(start, len(self.ops)):
            op, metrics = self.ops[i], self.contexts[i].metrics
            produced: list[pa.RecordBatch] = []
            began = time.perf_counter()
            for b in current:
                metrics.rows_in += b.num_rows
                metrics.batches_in += 1
                port = input_index if i == 0 else 0
                produced.extend(o for o in op.process_batch(b, port) if o.num_rows)
            metrics.busy_s += time.perf_counter() - began
            for o in produced:
                metrics.rows_out += o.num_rows
                metrics.batches_out += 1
            current = produced
            if not current:
                return []
        return current

    def on_watermark(self, watermark: int) -> list[pa.RecordBatch]:
        """Each member sees the watermark after the rows fired by the members before it
        (held back by the delays of the members before it).
        """
        if watermark >= MAX_WATERMARK or time.monotonic() - self.sampled >= STATE_SAMPLE_S:
            self.sample_state()
        out: list[pa.RecordBatch] = []
        for i, (op, c) in enumerate(zip(self.ops, self.contexts, strict=True)):
            c.watermark = watermark
            c.metrics.watermark = watermark
            out.extend(self._forward(i, op.on_watermark, watermark))
            watermark = delayed(watermark, op.watermark_delay_ms)
        return out

    def sample_state(self) -> None:
        """Record each member's state size in its metrics (and the peak so far)."""
        self.sampled = time.monotonic()
        for op, c in zip(self.ops, self.contexts, strict=True):
            c.metrics.record_state(op.describe_state())

    def output_watermark(self, watermark: int) -> int:
        """The watermark the chain passes downstream when its input watermark is
        ``watermark``.
        """
        for op in self.ops:
            watermark = delayed(watermark, op.watermark_delay_ms)
        return watermark

    def flush(self) -> list[pa.RecordBatch]:
        out: list[pa.RecordBatch] = []
        for i, op in enumerate(self.ops):
            out.extend(self._forward(i, op.flush))
        return out

    def on_barrier(self, epoch: int) -> None:
        for op in self.ops:
            op.on_barrier(epoch)

    def close(self) -> list[pa.RecordBatch]:
        out: list[pa.RecordBatch] = []
        for i, op in enumerate(self.ops):
            out.extend(self._forward(i, op.close))
        return out

    def stop(self) -> None:
        for op in self.ops:
            op.stop()

    def _forward(
        self, i: int, produce: Callable[..., Iterable[pa.RecordBatch]], *args: int
    ) -> list[pa.RecordBatch]:
        """Run member ``i`` outside process_batch (busy time counts), count what it
        produced and push it onwards.
        """
        metrics = self.contexts[i].metrics
        began = time.perf_counter()
        batches = [b for b in produce(*args) if b.num_rows]
        metrics.busy_s += time.perf_counter() - began
        for b in batches:
            metrics.rows_out += b.num_rows
            metrics.batches_out += 1
        return self._push(i + 1, batches) if batches else []
