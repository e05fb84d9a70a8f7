"""Rule: decide the keys that partition each stateful operator (fields grouping)."""

from __future__ import annotations

import dataclasses

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.nodes import PlanNode, WindowAggregate, transform_up


def choose_grouping_keys(
    roots: tuple[PlanNode, ...], ctx: OptimizerContext
) -> tuple[PlanNode, ...]:
    """A window aggregate is partitioned by its group keys, not by the window: all windows
    of one key live on one instance, and the windows of a key close in time order there.
    A window aggregate without keys runs as a single instance.
    """

    def choose(node: PlanNode) -> PlanNode:
        if isinstance(node, WindowAggregate) and node.partition_keys is None:
            return dataclasses.replace(node, partition_keys=node.keys)
        return node

    return transform_up(roots, choose)
