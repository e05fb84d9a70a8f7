"""A job: the job graph instantiated — operator chains, sources, routers — and its result."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from streamsql.checkpoint.coordinator import CheckpointStats, Coordinator
from streamsql.checkpoint.store import Checkpoint
from streamsql.config import Settings
from streamsql.connectors.base import Source, SourceContext
from streamsql.physical.graph import Edge, JobGraph, Task
from streamsql.plan.nodes import Collect, Scan
from streamsql.runtime.exchange import Router
from streamsql.runtime.late_rows import LateRowWriter
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators import Chain, OperatorContext, ResultBuffer, create_operator
from streamsql.runtime.operators.scan import ScanOperator
from streamsql.runtime.timeutil import MIN_WATERMARK, format_ms
from streamsql.state import StateStore


@dataclass(eq=False)
class Instance:
    """One parallel instance of a task: its operator chain and its input bookkeeping."""

    task: Task
    index: int
    chain: Chain
    metrics: list[OperatorMetrics]
    reader: Source | None = None
    scan: ScanOperator | None = None
    input_watermarks: dict[tuple[int, int], int] = field(default_factory=dict)
    open_inputs: set[tuple[int, int]] = field(default_factory=set)
    watermark: int = MIN_WATERMARK
    closed: bool = False
    #: Inputs that went idle ('table.exec.source.idle-timeout'): left out of the minimum.
    idle_inputs: set[tuple[int, int]] = field(default_factory=set)
    idle: bool = False
    last_active: float = 0.0  # sources: when rows last came (time.monotonic)
    #: A source asked to end early (what it feeds needs no more rows: a LIMIT passed
    #: them): its loop ends it as at the end of a bounded input.
    ending: bool = False
    # -- checkpoints ---------------------------------------------------------------------
    last_epoch: int = 0  # the last checkpoint this instance took its part in
    #: Inputs that delivered the barrier of the checkpoint being aligned.
    barriered: set[tuple[int, int]] = field(default_factory=set)
    aligning: int = 0  # the checkpoint being aligned (0: none)
    #: Messages of barriered inputs held back until the others deliver the barrier, and
    #: held messages to handle before the channel's next ones (threaded executor).
    held: deque = field(default_factory=deque)
    replay: deque = field(default_factory=deque)
    final_position: dict | None = None  # a source's position when it closed

    @property
    def label(self) -> str:
        return f"[{self.task.id}] {self.task.name} #{self.index}"


@dataclass
class JobResult:
    """What a finished (or stopped) job did: per-operator counters and totals."""

    name: str
    elapsed_s: float
    operators: list[OperatorMetrics]
    sources: dict[str, dict[str, int]]
    watermarks: dict[str, int] = field(default_factory=dict)
    #: Instances whose inputs are all idle ('table.exec.source.idle-timeout').
    idle: frozenset[str] = frozenset()
    #: Per source instance: its table's name.
    source_tables: dict[str, str] = field(default_factory=dict)
    #: The table late rows were written to ('table.exec.late-rows.sink'), if any.
    late_sink: str | None = None
    #: Checkpoints taken and restored (None: the job ran without checkpoints).
    checkpoints: CheckpointStats | None = None
    #: CPU time the process spent while the job ran (every thread's, and the caller's).
    cpu_s: float = 0.0

    @property
    def cores(self) -> float:
        """Cores kept busy on average: CPU time over elapsed time."""
        return self.cpu_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def _sum(self, attr: str) -> int:
        return sum(getattr(m, attr) for m in self.operators)

    @property
    def late_rows_dropped(self) -> int:
        return self._sum("late_rows_dropped")

    @property
    def late_rows_routed(self) -> int:
        """Late rows written to the 'table.exec.late-rows.sink' table (``late_sink``)."""
        return sum(m.extra.get("late_rows_routed", 0) for m in self.operators)

    @property
    def events_dropped(self) -> int:
        """Events sources dropped under 'execution.overload.policy' = 'drop'."""
        return self._sum("events_dropped")

    @property
    def rows_read(self) -> int:
        return sum(c.get("rows_read", 0) for c in self.sources.values())

    @property
    def parse_errors_skipped(self) -> int:
        return sum(c.get("parse_errors_skipped", 0) for c in self.sources.values())

    @property
    def rows_written(self) -> int:
        return sum(m.extra.get("rows_written", 0) for m in self.operators)

    def counters(self) -> list[dict[str, object]]:
        """One row per operator instance (rows in/out, batches, late rows, ...)."""
        return [m.as_dict() for m in self.operators]

    def by_operator(self) -> list[dict[str, object]]:
        """Counters summed over the instances of each operator."""
        merged: dict[tuple[int, str], dict[str, object]] = {}
        for m in self.operators:
            row = merged.setdefault(
                (m.task_id, m.name), {"task": m.task_id, "operator": m.name, "instances": 0}
            )
            row["instances"] = int(row["instances"]) + 1
            for k, v in m.as_dict().items():
                if k in ("task", "operator", "instance"):
                    continue
                row[k] = int(row.get(k, 0)) + int(v)  # type: ignore[call-overload]
        return list(merged.values())

    def summary(self) -> str:
        rate = self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0
        parts = [
            f"{self.rows_read:,} rows read",
            f"{self.rows_written:,} rows written",
            f"{self.late_rows_dropped:,} late rows dropped",
        ]
        if self.late_sink:
            parts[-1] += f" ({self.late_rows_routed:,} written to {self.late_sink})"
        if self.parse_errors_skipped:
            parts.append(f"{self.parse_errors_skipped:,} malformed rows skipped")
        if self.events_dropped:
            parts.append(f"{self.events_dropped:,} events dropped (overload)")
        parts.append(f"{self.elapsed_s:.2f} s ({rate:,.0f} rows/s, {self.cores:.1f} cores busy)")
        text = "job finished: " + ", ".join(parts)
        if self.checkpoints is not None and self.checkpoints.summary():
            text += "\n" + self.checkpoints.summary()
        return text

    def watermark_lines(self) -> list[str]:
        """Each instance's current watermark, sources first: where time stands."""
        lines = []
        for label, wm in self.watermarks.items():
            note = "  (idle)" if label in self.idle else ""
            lines.append(f"{label:<40} watermark {format_ms(wm)}{note}")
        return lines

    def held_back_by(self) -> list[str]:
        """The source instances at the lowest watermark among those not idle: the inputs
        that keep windows from closing.
        """
        live = {k: v for k, v in self.watermarks.items() if k in self.source_tables}
        live = {k: v for k, v in live.items() if k not in self.idle}
        if not live:
            return []
        low = min(live.values())
        return [k for k, v in live.items() if v == low]

    def __str__(self) -> str:
        return self.summary()


class Job:
    """Instantiates a job graph: one Chain per task instance, readers for source tasks and
    a Router per edge. The driver runs it.
    """

    def __init__(
        self,
        graph: JobGraph,
        settings: Settings,
        state: StateStore,
        *,
        name: str = "job",
        stdout: TextIO | None = None,
        results: ResultBuffer | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.graph = graph
        self.clock = clock  # processing time in epoch ms; None: the wall clock
        self.settings = settings
        self.state = state
        self.name = name
        self.stdout = stdout
        self.results = results
        self.instances: dict[int, list[Instance]] = {}
        self.routers: dict[Edge, Router] = {}
        self.start()
        self.finished: float | None = None
        self.cpu_finished: float | None = None
        self.late_rows = _late_row_writer(graph, name, stdout)
        #: Checkpoints: the coordinator (None: none are taken), the checkpoint to restore
        #: first (and whether with state: not at most once), operator ids, the stable id.
        self.coordinator: Coordinator | None = None
        self.restore_from: Checkpoint | None = None
        self.restore_state = True
        self.operator_ids: dict[int, str] = {}
        self.job_id = name
        for task in graph.tasks:
            self.instances[task.id] = [self._instance(task, i) for i in range(task.parallelism)]
        for edge in graph.edges:
            consumers = graph.task(edge.target).parallelism
            self.routers[edge] = Router(edge, consumers, settings.max_parallelism)
            for target in self.instances[edge.target]:
                for producer in range(graph.task(edge.source).parallelism):
                    key = (graph.edges.index(edge), producer)
                    target.input_watermarks[key] = MIN_WATERMARK
                    target.open_inputs.add(key)

    def _instance(self, task: Task, index: int) -> Instance:
        ops, contexts, metrics = [], [], []
        for i, node in enumerate(task.nodes):
            op = create_operator(node, self.results if isinstance(node, Collect) else None)
            m = OperatorMetrics(task.id, index, node.name)
            ctx = OperatorContext(
                task_id=task.id,
                node_index=i,
                instance=index,
                parallelism=task.parallelism,
                state=self.state,
                metrics=m,
                settings=self.settings,
                stdout=self.stdout,
                job_name=self.name,
                late_rows=self.late_rows if getattr(node, "late_sink", None) else None,
                clock=self.clock,
            )
            ops.append(op)
            contexts.append(ctx)
            metrics.append(m)
        chain = Chain(ops, contexts)
        inst = Instance(task, index, chain, metrics)
        if isinstance(task.head, Scan):
            scan = ops[0]
            assert isinstance(scan, ScanOperator)
            table = task.head.table
            source_ctx = SourceContext(
                columns=list(scan.physical_columns),
                batch_size=self.settings.batch_size,
                instance=index,
                parallelism=task.parallelism,
            )
            inst.reader = table.connector.create_source(table.context, source_ctx)
            inst.scan = scan
        return inst

    def start(self) -> None:
        """The job's clocks (wall and the process's CPU time) start now."""
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def finish(self) -> None:
        self.finished, self.cpu_finished = time.perf_counter(), time.process_time()

    def all_instances(self) -> list[Instance]:
        return [i for t in self.graph.tasks for i in self.instances[t.id]]

    def result(self) -> JobResult:
        end = self.finished or time.perf_counter()
        cpu_end = self.cpu_finished or time.process_time()
        sources: dict[str, dict[str, int]] = {}
        for inst in self.all_instances():
            if inst.reader is not None:
                name = inst.task.head.table.name  # type: ignore[attr-defined]
                bucket = sources.setdefault(name, {})
                for k, v in inst.reader.counters.items():
                    bucket[k] = bucket.get(k, 0) + v
        metrics = [m for inst in self.all_instances() for m in inst.metrics]
        insts = self.all_instances()
        return JobResult(
            self.name,
            end - self.started,
            metrics,
            sources,
            watermarks={i.label: i.watermark for i in insts},
            idle=frozenset(i.label for i in insts if i.idle),
            source_tables={
                i.label: i.task.head.table.name  # type: ignore[attr-defined]
                for i in insts
                if i.reader is not None
            },
            late_sink=self.late_rows.table.name if self.late_rows else None,
            checkpoints=self.coordinator.stats if self.coordinator is not None else None,
            cpu_s=cpu_end - self.cpu_started,
        )


def _late_row_writer(graph: JobGraph, name: str, stdout: TextIO | None) -> LateRowWriter | None:
    """One writer for the whole job when its windowed operators route late rows."""
    tables = [
        late.table
        for task in graph.tasks
        for node in task.nodes
        if (late := getattr(node, "late_sink", None)) is not None
    ]
    return LateRowWriter(tables[0], name, stdout) if tables else None
