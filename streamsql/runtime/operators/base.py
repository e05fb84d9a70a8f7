"""The operator interface and what an operator instance is given to work with."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import pyarrow as pa

from streamsql.expr import EvalContext
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MIN_WATERMARK
from streamsql.state import StateStore

if TYPE_CHECKING:
    from streamsql.runtime.late_rows import LateRowWriter


@dataclass
class OperatorContext:
    """Everything one operator instance may use: its place in the job, its state tables,
    its metrics and the session settings.
    """

    task_id: int
    node_index: int
    instance: int
    parallelism: int
    state: StateStore
    metrics: OperatorMetrics
    settings: Any = None
    stdout: TextIO | None = None
    job_name: str = "job"
    watermark: int = MIN_WATERMARK
    extras: dict[str, Any] = field(default_factory=dict)
    #: The job's late-row writer ('table.exec.late-rows.sink'), for windowed operators.
    late_rows: LateRowWriter | None = None
    #: Processing time in epoch milliseconds (None: the wall clock); tests inject one.
    clock: Callable[[], int] | None = None
    #: Checkpoints: the job's id stable across restarts, and whether sinks commit only
    #: with completed checkpoints (exactly-once).
    job_id: str = "job"
    exactly_once: bool = False

    @property
    def state_prefix(self) -> str:
        return f"t{self.task_id}_n{self.node_index}"

    def late(self, rows: pa.Table | pa.RecordBatch, watermark: int) -> None:
        """Rows dropped because every window they belong to fired before they came: counted,
        and written with ``watermark`` (the one they missed) to the job's late-row table
        when there is one.
        """
        n = rows.num_rows
        if not n:
            return
        self.metrics.late_rows_dropped += n
        if self.late_rows is not None:
            self.late_rows.write(rows, watermark, f"{self.metrics.name}#{self.task_id}")
            self.metrics.add("late_rows_routed", n)

    def late_counted(self, n: int) -> None:
        """``n`` rows dropped as late after they were pre-aggregated (by the local phase of
        a two-phase aggregation): counted; they are no longer there to be written.
        """
        self.metrics.late_rows_dropped += n

    def eval_context(self) -> EvalContext:
        wm = None if self.watermark == MIN_WATERMARK else self.watermark
        tz = self.settings["table.local-time-zone"] if self.settings is not None else "UTC"
        return EvalContext(watermark_ms=wm, now_ms=self.clock, time_zone=tz)

    def now_ms(self) -> int:
        """Processing time: the job's clock, in epoch milliseconds."""
        return EvalContext(now_ms=self.clock).current_ms()


class Operator:
    """A plain object that turns input batches and watermarks into output batches.

    It never touches queues or threads: the driver calls it and routes what it returns.
    """

    #: How far behind its input watermark the operator's output watermark stays: rows it
    #: emits may be up to this much older than the input watermark (an interval join).
    watermark_delay_ms: int = 0
    #: True once the operator needs no more input (a LIMIT passed its rows): the executor
    #: then ends its instance as if its input had ended, and the sources that fed only it
    #: end too, so that the job ends normally.
    done: bool = False

    def open(self, ctx: OperatorContext) -> None:
        self.ctx = ctx

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        raise NotImplementedError

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        """The input watermark advanced: fire what is complete."""
        return ()

    def on_barrier(self, epoch: int) -> None:
        """Flush state for checkpoint ``epoch`` (the driver has called ``flush`` first)."""

    #: Whether the operator's state can be checkpointed and restored. A stateful operator
    #: that cannot says False, and a job with checkpoints enabled refuses to start.
    checkpointable: ClassVar[bool] = True

    def snapshot(self) -> OperatorSnapshot | None:
        """The instance's state for the checkpoint, taken right after ``on_barrier``:
        everything a fresh instance needs (after ``open``) to go on exactly where this one
        is. None: the operator keeps no state. The executor calls it on the instance's own
        thread, and no input comes in between ``on_barrier`` and it.
        """
        return None

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        """Go on from ``snapshot``: called after ``open`` and before any input. At another
        parallelism than the checkpoint's, ``snapshot`` holds the keyed rows this instance
        owns now and ``values`` is every old instance's ``values`` (see
        ``streamsql.runtime.snapshot``); at the same one, ``values`` is ``[snapshot.values]``.
        """
        if snapshot.tables or snapshot.values:
            raise NotImplementedError(f"{type(self).__name__} cannot restore state")

    def flush(self) -> Iterable[pa.RecordBatch]:
        """Emit what the operator holds back to work in bigger pieces (a mini-batch): the
        driver calls this when its inputs are idle and at least every allowed latency.
        """
        return ()

    def close(self) -> Iterable[pa.RecordBatch]:
        """End of input (after the final +inf watermark)."""
        return ()

    def stop(self) -> None:
        """The job stops before the end of its input: publish what is safe, release."""

    def describe_state(self) -> dict[str, int]:
        """Rows held in state, by table, for metrics."""
        return {}
