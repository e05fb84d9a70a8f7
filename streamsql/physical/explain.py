"""EXPLAIN for job graphs: tasks, their parallelism, chained operators, edges, state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamsql.physical.graph import JobGraph, Task
from streamsql.plan.join_nodes import Join, LookupJoin
from streamsql.plan.nodes import LateSink, Scan, Sink

#: Extra lines under an operator's line (EXPLAIN ANALYZE's figures): given the task and the
#: operator's place in its chain.
Annotate = Callable[[Task, int], list[str]]


def explain_physical(
    graph: JobGraph,
    *,
    idle_timeout_ms: int = 0,
    annotate: Annotate | None = None,
    checkpoints: Checkpointing | None = None,
) -> str:
    """The job graph; a source's watermark line names its idle timeout when one is set.
    ``annotate`` adds lines under each operator (indented by the caller). Each sink states
    the delivery it achieves with ``checkpoints`` (None: the job takes none), and a last
    line the guarantee of the whole job.
    """
    lines = []
    for task in graph.tasks:
        lines.append(f"Task {task.id}: {task.name}  [parallelism={task.parallelism}]")
        inputs = graph.inputs(task.id)
        if len({e.input_index for e in inputs}) > 1:
            lines.append(f"  fan-in: {len({e.input_index for e in inputs})} inputs")
        for edge in inputs:
            side = input_side(task, edge.input_index)
            lines.append(f"  <- {edge.distribution.describe()} from Task {edge.source}{side}")
        for i, node in enumerate(task.nodes):
            lines.append(f"  {node.describe()}")
            if annotate is not None:
                lines += annotate(task, i)
        for table in task.state_tables():
            instances = "0" if task.parallelism == 1 else f"0..{task.parallelism - 1}"
            lines.append(f"  state: DuckDB table {table}_i{{{instances}}}")
        watermark = _watermark(task)
        if watermark:
            if idle_timeout_ms and isinstance(task.head, Scan) and not task.head.proctime:
                watermark += f"; idle after {idle_timeout_ms} ms without rows"
            lines.append(f"  watermark: {watermark}")
        for node in task.nodes:
            if isinstance(node, Sink):
                lines.append(f"  delivery: {delivery(node, checkpoints)}")
            if late := getattr(node, "late_sink", None):
                lines.append(f"  late rows: {_late(node.name, task.id, late)}")
        for edge in graph.outputs(task.id):
            lines.append(f"  -> {edge.distribution.describe()} to Task {edge.target}")
    sinks = [n for t in graph.tasks for n in t.nodes if isinstance(n, Sink)]
    if sinks:
        lines.append(job_guarantee(sinks, checkpoints))
    return "\n".join(lines)


def _watermark(task: Task) -> str | None:
    head = task.head
    if isinstance(head, Scan) and head.proctime and head.watermarks:
        return f"processing time: the clock, stamped into {head.table.proctime_attribute}"
    if isinstance(head, Scan) and head.table.watermark is not None and head.watermarks:
        return f"generated from {head.table.watermark.describe()}"
    attr = task.tail.time_attr
    return f"carried by column {attr}" if attr else None


def input_side(task: Task, index: int) -> str:
    """Which input of a task of several inputs an edge feeds: " (left)", " (input 2)"; ""
    when the task has one.
    """
    if len(task.head.inputs) < 2:
        return ""
    if isinstance(task.head, Join | LookupJoin):
        return " (left)" if index == 0 else " (right)"
    return f" (input {index + 1})"


def _late(name: str, task_id: int, late: LateSink) -> str:
    cols = ", ".join(
        [
            *late.columns,
            *(c for c in ("watermark", "operator") if c in late.table.physical_schema.names),
        ]
    )
    return f"-> {late.table.name} ({cols}) as operator '{name}#{task_id}'"


@dataclass(frozen=True)
class Checkpointing:
    """How a job takes checkpoints: 'execution.checkpointing.mode' and the interval text."""

    mode: str
    interval: str


#: The delivery levels from the weakest, as the job's guarantee is its weakest sink's.
LEVELS = ("none", "at-most-once", "at-least-once", "exactly-once")


def delivery(node: Sink, checkpoints: Checkpointing | None) -> str:
    """What a sink delivers after a crash and restart, given how the job checkpoints."""
    connector = node.table.connector
    sink = connector.sink_class
    if checkpoints is None:
        return "none after a crash (no checkpoints: run with a state directory to take them)"
    if checkpoints.mode == "AT_MOST_ONCE":
        return "at-most-once (a restart goes on after what was read, without state)"
    if checkpoints.mode == "AT_LEAST_ONCE":
        return "at-least-once (unaligned checkpoints: a restart may repeat rows)"
    if sink is not None and sink.transactional:
        return connector.guarantee()
    name = connector.name
    return f"at-least-once ({name} does not commit with checkpoints: a restart may repeat rows)"


def job_guarantee(sinks: list[Sink], checkpoints: Checkpointing | None) -> str:
    """The job's end-to-end guarantee: its weakest sink's."""
    levels = [
        next(lv for lv in reversed(LEVELS) if delivery(s, checkpoints).startswith(lv))
        for s in sinks
    ]
    weakest = min(levels, key=LEVELS.index)
    if checkpoints is None:
        return "guarantee: none after a crash (no checkpoints)"
    return (
        f"guarantee: {weakest} end to end (checkpoints {checkpoints.mode} {checkpoints.interval})"
    )
