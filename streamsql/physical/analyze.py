"""EXPLAIN ANALYZE: the job graph annotated with what each operator and instance did.

Under each operator of :func:`~streamsql.physical.explain.explain_physical`'s plan comes a
small table of its figures (:mod:`streamsql.runtime.metrics`): one row for a single
instance; with parallelism above 1 a row for all instances together and one per instance,
so that an instance that took most of the rows (a hot key) or most of the time stands out.
"""

from __future__ import annotations

import textwrap

from streamsql.output import figure_table, text_table
from streamsql.physical.explain import Checkpointing, explain_physical
from streamsql.physical.graph import JobGraph, Task
from streamsql.runtime.job import JobResult
from streamsql.runtime.metrics import Figures, combine, instance_figures

#: An instance with this many times its even share of an operator's rows is called out.
SKEW_FACTOR = 1.5

LEGEND = (
    "figures: rows in/out, and per second over the run's {elapsed:.2f} s; util: share of the "
    "run the instance was busy in the operator, headroom = 1 - util; backpr: share of the "
    "run it waited on a full output channel; fill: input channel fill; watermark and lag ms: "
    "event time reached, and how far it is behind the job's newest (source) watermark; "
    "state: rows held in state at the end, peak: the most seen; late: rows dropped as late; "
    "dropped: events shed under overload; all: the instances together (util, backpr, lag: "
    "the worst instance's)"
)


def explain_analyzed(
    graph: JobGraph,
    result: JobResult,
    *,
    idle_timeout_ms: int = 0,
    checkpoints: Checkpointing | None = None,
) -> str:
    """The physical plan with each operator's figures from a finished run's ``result``."""
    by_node: dict[tuple[int, int], list[Figures]] = {}
    for f in instance_figures(result):
        by_node.setdefault((f.task, f.node), []).append(f)

    def annotate(task: Task, node: int) -> list[str]:
        instances = by_node.get((task.id, node), [])
        # Keys split the rows at a hash exchange: there, uneven shares mean a hot key.
        keyed = node == 0 and any(e.distribution.kind == "hash" for e in graph.inputs(task.id))
        return _figures_lines(instances, keyed=keyed) if instances else []

    plan = explain_physical(
        graph, idle_timeout_ms=idle_timeout_ms, annotate=annotate, checkpoints=checkpoints
    )
    legend = textwrap.fill(LEGEND.format(elapsed=result.elapsed_s), width=92)
    return "\n".join([result.summary(), plan, "", legend])


def _figures_lines(instances: list[Figures], *, keyed: bool) -> list[str]:
    """The figures table of one operator; behind a hash exchange (``keyed``) a note when
    one instance got far more rows than the others.
    """
    if len(instances) == 1:
        labels, rows = [["#0"]], instances
    else:
        labels = [["all"], *([f"#{f.instance}"] for f in instances)]
        rows = [*combine(instances), *instances]
    headings, cells = figure_table(labels, rows, [""])
    lines = ["    " + line for line in text_table(headings, cells)]
    skew = _skew(instances) if keyed else None
    return lines + ([f"    {skew}"] if skew else [])


def _skew(instances: list[Figures]) -> str | None:
    """A note when one instance received far more than its even share of the rows."""
    total = sum(f.rows_in for f in instances)
    if len(instances) < 2 or total == 0:
        return None
    hot = max(instances, key=lambda f: f.rows_in)
    share, even = hot.rows_in / total, 1 / len(instances)
    if share < min(SKEW_FACTOR * even, 1.0):
        return None
    return (
        f"skew: #{hot.instance} received {share:.1%} of the rows (an even spread: {even:.1%}); "
        f"its utilization {hot.utilization:.1%}"
    )
