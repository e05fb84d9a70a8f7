"""Rule: decide how many parallel instances each operator runs."""

from __future__ import annotations

import dataclasses

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.join_nodes import Join
from streamsql.plan.nodes import PlanNode, Scan, Sink, transform_up


def assign_parallelism(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """Sources read with their table's 'scan.parallelism' instances (one when unset);
    stateful operators run ``parallelism.default`` instances (one when they have no
    partition keys); the stateless operators right after a source are spread over
    ``parallelism.default`` instances; everything else keeps the parallelism of its input so
    that it chains to it.
    """

    def assign(node: PlanNode) -> PlanNode:
        if isinstance(node, Scan):
            table = node.table
            p = table.connector.scan_parallelism(table.context) or 1
        elif isinstance(node, Sink) and node.input.mode.updating and not node.table.primary_key:
            p = 1  # one writer keeps the changes of every row in order
        elif isinstance(node, Join):
            p = ctx.parallelism if node.shuffle_keys and node.shuffle_keys[0] else 1
        elif node.stateful:
            keys = getattr(node, "shuffle_keys", None)
            p = ctx.parallelism if keys else 1
        elif any(isinstance(i, Scan) for i in node.inputs):
            p = ctx.parallelism
        else:
            p = max((i.parallelism for i in node.inputs), default=1)
        return node if node.parallelism == p else dataclasses.replace(node, parallelism=p)

    return transform_up(roots, assign)
