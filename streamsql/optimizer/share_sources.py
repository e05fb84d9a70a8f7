"""Rule: a table read by several branches of a job is read once and fanned out."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from sqlglot import exp

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.nodes import PlanNode, Project, Scan, transform_up, walk


def share_sources(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """All scans of one table become one scan of the union of their columns; branches that
    need fewer columns get a projection on top (shown as fan-out in EXPLAIN).
    """
    scans: dict[tuple[str, bool], list[Scan]] = defaultdict(list)
    for node in walk(roots):
        if isinstance(node, Scan):  # a scan on processing time has a watermark of its own
            scans[node.table.name, node.proctime].append(node)
    shared: dict[int, PlanNode] = {}
    for group in scans.values():
        if len(group) < 2:
            continue
        wanted = {c for s in group for c in s.columns}
        columns = tuple(c for c in group[0].table.schema.names if c in wanted)
        one = dataclasses.replace(group[0], columns=columns)
        for scan in group:
            if scan.columns == columns:
                shared[id(scan)] = one
            else:
                exprs = tuple((c, exp.column(c, quoted=True)) for c in scan.columns)
                shared[id(scan)] = Project(one, exprs)
    if not shared:
        return roots
    return transform_up(roots, lambda n: shared.get(id(n), n))
