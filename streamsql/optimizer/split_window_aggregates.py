"""Rule: split a window aggregate into a local and a global phase (two-phase aggregation)."""

from __future__ import annotations

import dataclasses

from streamsql.optimizer.context import OptimizerContext
from streamsql.plan.local_window_agg import LocalWindowAggregate
from streamsql.plan.nodes import PlanNode, WindowAggregate, transform_up


def split_window_aggregates(
    roots: tuple[PlanNode, ...], ctx: OptimizerContext
) -> tuple[PlanNode, ...]:
    """``WindowAggregate(x)`` becomes ``GlobalWindowAggregate(LocalWindowAggregate(x))``:
    the local phase runs with ``x``'s parallelism, chained to it, and pre-aggregates each
    batch, so that partial rows, far fewer than the rows, cross the exchange to the
    global phase, which merges them. As Flink's 'table.optimizer.agg-phase-strategy':
    TWO_PHASE splits every aggregate it can, AUTO those whose input would cross an
    exchange at parallelism > 1 (else there is nothing to save), ONE_PHASE none.

    Runs after assign_parallelism (it needs the parallelism) and before insert_exchanges.
    """
    if ctx.agg_phase == "ONE_PHASE":
        return roots

    def split(node: PlanNode) -> PlanNode:
        if not isinstance(node, WindowAggregate) or not splittable(node):
            return node
        if ctx.agg_phase == "AUTO" and node.input.parallelism <= 1 and node.parallelism <= 1:
            return node  # no exchange: rows go to the aggregate as they are
        local = LocalWindowAggregate(
            node.input,
            node.window,
            node.keys,
            node.aggs,
            node.assigns,
            parallelism=node.input.parallelism,
        )
        return dataclasses.replace(node, input=local, phase="global")

    return transform_up(roots, split)


def splittable(node: WindowAggregate) -> bool:
    """Whether the aggregate can merge partial aggregates: not for DISTINCT aggregates
    (their values must meet), SESSION windows (they merge by gaps), a CUMULATE the
    aggregate assigns (a row lands in several windows), a late-rows sink (late rows must
    still be rows to be written) or updating emits (early firing, allowed lateness).
    """
    return not (
        node.phase
        or node.window.is_session
        or (node.assigns and node.window.kind == "CUMULATE")
        or any(a.distinct for a in node.aggs)
        or node.late_sink is not None
        or node.emit.updating
    )
