"""Rule: decide the keys that partition each stateful operator (fields grouping)."""

from __future__ import annotations

import dataclasses

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.join_nodes import Join
from streamsql.plan.nodes import (
    WINDOW_COLUMNS,
    Aggregate,
    PlanNode,
    TopN,
    WindowAggregate,
    WindowTopN,
    transform_up,
)


def choose_grouping_keys(
    roots: tuple[PlanNode, ...], ctx: OptimizerContext
) -> tuple[PlanNode, ...]:
    """Aggregates are partitioned by their group keys and rankings by their PARTITION BY
    keys. Windowed operators leave the window out: all windows of one key live on one
    instance, and they close there in time order. An operator without keys runs as a single
    instance. A join hashes each input on its side of the equi-keys.
    """

    def choose(node: PlanNode) -> PlanNode:
        match node:
            case WindowAggregate() if node.shuffle_keys is None and node.window.is_session:
                # Sessions merge within a partition: all of one partition on one instance.
                return dataclasses.replace(node, shuffle_keys=node.window.partition)
            case WindowAggregate() | Aggregate() if node.shuffle_keys is None:
                return dataclasses.replace(node, shuffle_keys=node.keys)
            case TopN() if node.shuffle_keys is None:
                return dataclasses.replace(node, shuffle_keys=node.partition_keys)
            case Join() if node.shuffle_keys is None:
                # Equal keys meet on one instance; without keys everything meets on one.
                return dataclasses.replace(node, shuffle_keys=(node.left_keys, node.right_keys))
            case WindowTopN() if node.shuffle_keys is None:
                keys = tuple(k for k in node.partition_keys if k not in WINDOW_COLUMNS)
                return dataclasses.replace(node, shuffle_keys=keys)
        return node

    return transform_up(roots, choose)
