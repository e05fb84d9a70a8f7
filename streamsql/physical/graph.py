"""The job graph: tasks (operator chains run by parallel instances) joined by edges."""

from __future__ import annotations

from dataclasses import dataclass

from streamsql.plan.nodes import Distribution, PlanNode, Scan, Sink, WindowAggregate


@dataclass(frozen=True, eq=False)
class Task:
    """A chain of plan nodes that run fused in each of ``parallelism`` instances.

    ``nodes`` are in data-flow order: the head consumes the task's input edges (or reads
    the table, when it is a Scan) and the last node feeds the output edges.
    """

    id: int
    nodes: tuple[PlanNode, ...]
    parallelism: int

    @property
    def head(self) -> PlanNode:
        return self.nodes[0]

    @property
    def tail(self) -> PlanNode:
        return self.nodes[-1]

    @property
    def is_source(self) -> bool:
        return isinstance(self.head, Scan)

    @property
    def name(self) -> str:
        parts = []
        for node in self.nodes:
            match node:
                case Scan():
                    parts.append(f"Source: {node.table.name}")
                case Sink():
                    parts.append(f"Sink: {node.table.name}")
                case _:
                    parts.append(node.name)
        return " -> ".join(parts)

    def state_tables(self) -> list[str]:
        """Names of the DuckDB state tables the task's instances keep (for EXPLAIN)."""
        out = []
        for i, node in enumerate(self.nodes):
            if isinstance(node, WindowAggregate):
                prefix = f"{state_prefix(self.id, i)}_window_agg"
                out += [f"{prefix}_{kind}" for kind in node.state_tables()]
        return out


def state_prefix(task_id: int, node_index: int) -> str:
    return f"t{task_id}_n{node_index}"


@dataclass(frozen=True)
class Edge:
    """Rows of ``source``'s instances flow to ``target``'s instances, routed by
    ``distribution`` (forward when both sides have the same parallelism and no key).
    """

    source: int
    target: int
    distribution: Distribution
    input_index: int = 0


@dataclass(frozen=True)
class JobGraph:
    tasks: tuple[Task, ...]  # in topological order: sources first
    edges: tuple[Edge, ...]

    def task(self, task_id: int) -> Task:
        return next(t for t in self.tasks if t.id == task_id)

    def outputs(self, task_id: int) -> list[Edge]:
        return [e for e in self.edges if e.source == task_id]

    def inputs(self, task_id: int) -> list[Edge]:
        return [e for e in self.edges if e.target == task_id]
