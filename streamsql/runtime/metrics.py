"""Counters of one operator instance, and the figures derived from them for people.

The driver (or executor) and the operators count into :class:`OperatorMetrics`; everything
that reports on a job — ``EXPLAIN ANALYZE``, ``streamsql run``'s table, the Prometheus
endpoint — reads the same derived rows from :func:`instance_figures` and
:func:`operator_figures`:

- **rows in / rows out** and **batches in / out**: what the instance consumed and produced.
- **rows/s** (in and out): rows over the job's elapsed wall-clock time, the throughput.
- **utilization**: ``busy_s / elapsed``, the share of the time the instance spent inside
  its operator (processing batches, firing on watermarks, flushing, closing); near 1 the
  instance is the bottleneck. **headroom** is ``1 - utilization``.
- **backpressured**: ``blocked_s / elapsed``, the share of the time the instance waited for
  room in a full output channel: its consumer is slower than it.
- **channel fill**: batches queued in the instance's input channel over its capacity (none
  when the executor has no channels, as the deterministic driver).
- **watermark**: the event time (epoch ms) the instance has reached, and **watermark lag**:
  the job's newest watermark (always a source's) minus this one, in milliseconds. It is
  event-time lag, so it means the same in a replay of old data as in a live stream: how
  far behind the fastest source this operator's notion of time is (0 at the end of a
  bounded input, when every watermark is +inf).
- **state rows**: rows the operator holds in state (windows not yet fired, join sides,
  groups, ...), summed over its state counters (:data:`STATE_ROW_KEYS`), sampled while the
  job runs and at its end, and the **peak** seen.
- **late rows** (dropped because their window had fired) and **events dropped** (shed by a
  source under ``'execution.overload.policy' = 'drop'``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK

if TYPE_CHECKING:
    from streamsql.runtime.job import JobResult

#: Keys of ``OperatorMetrics.extra`` (from ``Operator.describe_state``) that count rows
#: held in state; their sum is an instance's state size.
STATE_ROW_KEYS = frozenset(
    {
        "aggregate_groups",
        "emitted_rows",
        "join_left_rows",
        "join_right_rows",
        "lookup_table_rows",
        "session_state_rows",
        "temporal_left_rows",
        "temporal_versions",
        "topn_state_rows",
        "window_agg_state_rows",
        "window_topn_state_rows",
    }
)


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
    #: The most rows the operator held in state at any sample (see ``record_state``).
    state_rows_peak: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + n

    def record_state(self, described: Mapping[str, int]) -> None:
        """Take the operator's ``describe_state()``: its counters and the peak state size."""
        self.extra.update(described)
        rows = state_rows(described)
        if rows is not None and rows > self.state_rows_peak:
            self.state_rows_peak = rows

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


def state_rows(counters: Mapping[str, int]) -> int | None:
    """Rows held in state according to ``counters`` (None: no state counter among them).

    >>> state_rows({"window_agg_state_rows": 7, "open_windows": 2, "rows_written": 9})
    7
    >>> state_rows({"rows_written": 9}) is None
    True
    """
    found = [v for k, v in counters.items() if k in STATE_ROW_KEYS]
    return sum(found) if found else None


@dataclass(frozen=True)
class Figures:
    """The derived figures of one operator instance, or of an operator's instances taken
    together (``instance`` None): counts and rates summed; utilization, backpressure,
    channel fill and lag the worst instance's (the one that holds the operator back);
    the watermark the lowest (the one downstream sees); state rows summed.
    """

    task: int
    node: int  # the operator's place in its task's chain
    operator: str
    instance: int | None
    instances: int
    rows_in: int
    rows_out: int
    batches_in: int
    batches_out: int
    rows_in_per_s: float
    rows_out_per_s: float
    busy_s: float
    blocked_s: float
    utilization: float
    backpressured: float
    headroom: float
    queued_batches: int
    queue_capacity: int
    channel_fill: float | None  # None: no input channel
    watermark: int | None  # epoch ms; None: none yet
    watermark_lag_ms: int | None
    state_rows: int | None  # None: a stateless operator
    state_rows_peak: int | None
    late_rows: int
    events_dropped: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def instance_figures(result: JobResult) -> list[Figures]:
    """One row of figures per operator instance, in the job's order (task, instance,
    place in the chain).
    """
    return figures_of(result.operators, result.elapsed_s)


def operator_figures(result: JobResult) -> list[Figures]:
    """One row of figures per operator, its instances taken together."""
    return combine(instance_figures(result))


def figures_of(metrics: Iterable[OperatorMetrics], elapsed_s: float) -> list[Figures]:
    """:func:`instance_figures` over bare metrics; ``elapsed_s`` is the job's run time.
    Each instance lists its operators in chain order: that order gives ``node``.
    """
    metrics = list(metrics)
    newest = max((w for m in metrics if (w := _finite(m.watermark)) is not None), default=None)
    seen: Counter[tuple[int, int]] = Counter()
    rows = []
    for m in metrics:
        node = seen[(m.task_id, m.instance)]
        seen[(m.task_id, m.instance)] += 1
        util = _ratio(m.busy_s, elapsed_s)
        now = state_rows(m.extra)
        peak = None
        if now is not None or m.state_rows_peak:
            peak = max(now or 0, m.state_rows_peak, m.extra.get("join_state_rows_peak", 0))
        rows.append(
            Figures(
                task=m.task_id,
                node=node,
                operator=m.name,
                instance=m.instance,
                instances=1,
                rows_in=m.rows_in,
                rows_out=m.rows_out,
                batches_in=m.batches_in,
                batches_out=m.batches_out,
                rows_in_per_s=m.rows_in / elapsed_s if elapsed_s > 0 else 0.0,
                rows_out_per_s=m.rows_out / elapsed_s if elapsed_s > 0 else 0.0,
                busy_s=m.busy_s,
                blocked_s=m.blocked_s,
                utilization=util,
                backpressured=_ratio(m.blocked_s, elapsed_s),
                headroom=1.0 - util,
                queued_batches=m.queued_batches,
                queue_capacity=m.queue_capacity,
                channel_fill=m.queued_batches / m.queue_capacity if m.queue_capacity else None,
                watermark=_known(m.watermark),
                watermark_lag_ms=watermark_lag(m.watermark, newest),
                state_rows=now,
                state_rows_peak=peak,
                late_rows=m.late_rows_dropped,
                events_dropped=m.events_dropped,
            )
        )
    return rows


def watermark_lag(watermark: int | None, newest: int | None) -> int | None:
    """Milliseconds of event time between the job's newest watermark and ``watermark``;
    0 once ``watermark`` reached the end of input; None while either is unknown.

    >>> watermark_lag(1_000, 4_500)
    3500
    >>> watermark_lag(2**63 - 1, None)
    0
    >>> watermark_lag(None, 4_500) is None
    True
    """
    if watermark is not None and watermark >= MAX_WATERMARK:
        return 0
    if _finite(watermark) is None or newest is None:
        return None
    return max(newest - watermark, 0)  # type: ignore[operator]


def combine(instances: list[Figures]) -> list[Figures]:
    """Per operator: its instances' figures taken together (see :class:`Figures`)."""
    groups: dict[tuple[int, int], list[Figures]] = {}
    for f in instances:
        groups.setdefault((f.task, f.node), []).append(f)
    return [_combined(group) for group in groups.values()]


def _combined(group: list[Figures]) -> Figures:
    first = group[0]
    worst_util = max(f.utilization for f in group)
    fills = [f.channel_fill for f in group if f.channel_fill is not None]
    marks = [f.watermark for f in group]
    lags = [f.watermark_lag_ms for f in group if f.watermark_lag_ms is not None]
    states = [f.state_rows for f in group if f.state_rows is not None]
    peaks = [f.state_rows_peak for f in group if f.state_rows_peak is not None]
    return Figures(
        task=first.task,
        node=first.node,
        operator=first.operator,
        instance=None,
        instances=len(group),
        rows_in=sum(f.rows_in for f in group),
        rows_out=sum(f.rows_out for f in group),
        batches_in=sum(f.batches_in for f in group),
        batches_out=sum(f.batches_out for f in group),
        rows_in_per_s=sum(f.rows_in_per_s for f in group),
        rows_out_per_s=sum(f.rows_out_per_s for f in group),
        busy_s=sum(f.busy_s for f in group),
        blocked_s=sum(f.blocked_s for f in group),
        utilization=worst_util,
        backpressured=max(f.backpressured for f in group),
        headroom=1.0 - worst_util,
        queued_batches=sum(f.queued_batches for f in group),
        queue_capacity=sum(f.queue_capacity for f in group),
        channel_fill=max(fills) if fills else None,
        watermark=None if None in marks else min(marks),  # type: ignore[type-var]
        watermark_lag_ms=max(lags) if lags else None,
        state_rows=sum(states) if states else None,
        state_rows_peak=sum(peaks) if peaks else None,
        late_rows=sum(f.late_rows for f in group),
        events_dropped=sum(f.events_dropped for f in group),
    )


def _ratio(part: float, whole: float) -> float:
    """``part / whole`` kept within [0, 1] (timers and the wall clock differ slightly)."""
    return min(max(part / whole, 0.0), 1.0) if whole > 0 else 0.0


def _known(watermark: int | None) -> int | None:
    return None if watermark is None or watermark <= MIN_WATERMARK else watermark


def _finite(watermark: int | None) -> int | None:
    if watermark is None or watermark <= MIN_WATERMARK or watermark >= MAX_WATERMARK:
        return None
    return watermark
