"""Counters of one operator instance, and their sums for a job's result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OperatorMetrics:
    """What one operator instance did. The driver counts rows and batches; operators add
    their own counters (late rows, parse errors, state rows) to ``extra``.
    """

    task_id: int
    instance: int
    name: str
    rows_in: int = 0
    rows_out: int = 0
    batches_in: int = 0
    batches_out: int = 0
    late_rows_dropped: int = 0
    busy_s: float = 0.0
    #: Seconds the instance waited for room in a full output channel (backpressure).
    blocked_s: float = 0.0
    #: Batches waiting in the instance's input channel now, and its capacity (0: none).
    queued_batches: int = 0
    queue_capacity: int = 0
    #: Events a source dropped under 'execution.overload.policy' = 'drop'.
    events_dropped: int = 0
    watermark: int | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + n

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "task": self.task_id,
            "instance": self.instance,
            "operator": self.name,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "batches_in": self.batches_in,
            "batches_out": self.batches_out,
            "late_rows_dropped": self.late_rows_dropped,
        }
        out.update(self.extra)
        return out
