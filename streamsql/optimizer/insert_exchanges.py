"""Rule: put an Exchange wherever rows must move between operator instances."""

from __future__ import annotations

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.join_nodes import Join
from streamsql.plan.nodes import Distribution, Exchange, PlanNode, Sink, transform_up


def required_distribution(node: PlanNode, index: int = 0) -> Distribution | None:
    """What a node needs from its input: hash(keys), singleton, or nothing in particular.

    A sink that receives updates needs every change of one key from one instance, in
    order: hash on its primary key, or everything in one instance.
    """
    if isinstance(node, Sink) and node.input.mode.updating:
        pk = node.table.primary_key
        return Distribution("hash", pk) if pk else Distribution("singleton")
    if not node.stateful:
        return None
    if isinstance(node, Join):  # each input on its own side of the keys
        keys = node.shuffle_keys[index] if node.shuffle_keys else ()
        return Distribution("hash", keys) if keys else Distribution("singleton")
    keys = getattr(node, "shuffle_keys", None) or ()
    return Distribution("hash", tuple(keys)) if keys else Distribution("singleton")


def insert_exchanges(roots: tuple[PlanNode, ...], ctx: OptimizerContext) -> tuple[PlanNode, ...]:
    """A stateful operator gets hash(keys) (fields grouping) or singleton input; a change
    of parallelism between stateless operators gets round_robin (shuffle grouping); equal
    parallelism without a key requirement is a forward edge and needs no Exchange.
    """

    def place(node: PlanNode) -> PlanNode:
        if isinstance(node, Exchange) or not node.inputs:
            return node
        new_inputs = []
        for index, child in enumerate(node.inputs):
            need = required_distribution(node, index)
            if isinstance(child, Exchange):
                new_inputs.append(child)
            elif need is not None and (child.parallelism > 1 or node.parallelism > 1):
                new_inputs.append(Exchange(child, need, parallelism=node.parallelism))
            elif child.parallelism != node.parallelism:
                kind = "singleton" if node.parallelism == 1 else "round_robin"
                new_inputs.append(Exchange(child, Distribution(kind), parallelism=node.parallelism))
            else:
                new_inputs.append(child)
        if all(a is b for a, b in zip(new_inputs, node.inputs, strict=True)):
            return node
        return node.with_inputs(*new_inputs)

    return transform_up(roots, place)
