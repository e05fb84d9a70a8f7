"""From an optimized logical plan to a job graph: cut chains at exchanges and fan-outs."""

from __future__ import annotations

from collections import defaultdict

from streamsql.physical.graph import Edge, JobGraph, Task
from streamsql.plan.nodes import Distribution, Exchange, PlanNode, Scan, walk

FORWARD = Distribution("forward")


def build_job_graph(roots: tuple[PlanNode, ...]) -> JobGraph:
    """Chain each node onto its input's task unless the input is an Exchange, a source of
    several consumers (fan-out) or the node is a Scan; Exchanges become edges.
    """
    order = [n for n in walk(roots) if not isinstance(n, Exchange)]
    consumers: dict[int, int] = defaultdict(int)
    for node in walk(roots):
        for child in node.inputs:
            consumers[id(child)] += 1

    chains: list[list[PlanNode]] = []
    chain_of: dict[int, int] = {}  # node id -> chain index
    pending_edges: list[tuple[PlanNode, int, Distribution, int]] = []
    for node in order:
        upstream = node.inputs[0] if len(node.inputs) == 1 else None
        chainable = (
            upstream is not None
            and not isinstance(node, Scan)
            and not isinstance(upstream, Exchange)
            and consumers[id(upstream)] == 1
            and upstream.parallelism == node.parallelism
        )
        if chainable:
            idx = chain_of[id(upstream)]
            chains[idx].append(node)
        else:
            idx = len(chains)
            chains.append([node])
            for i, child in enumerate(node.inputs):
                dist = child.distribution if isinstance(child, Exchange) else FORWARD
                producer = child.input if isinstance(child, Exchange) else child
                pending_edges.append((producer, idx, dist, i))
        chain_of[id(node)] = idx

    tasks = tuple(
        Task(i + 1, tuple(chain), chain[0].parallelism or 1) for i, chain in enumerate(chains)
    )
    edges = tuple(
        Edge(chain_of[id(producer)] + 1, target + 1, dist, index)
        for producer, target, dist, index in pending_edges
    )
    return JobGraph(tasks, edges)
