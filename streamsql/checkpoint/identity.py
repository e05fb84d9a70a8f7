"""Which operator of a restarted job a checkpoint's state belongs to, and whether the query
is still the one that was checkpointed.

Every plan node gets an id from what it does (its EXPLAIN line without parallelism) and its
place in the plan, so that the same query planned at another parallelism gives the same
ids: exchanges and the local phase of a two-phase aggregation (which exist only at some
parallelisms and keep no state) are left out, and a two-phase aggregation's global phase
has the id of the one-phase aggregate it stands for. The fingerprint is a hash of all ids:
a changed query has another one.
"""

from __future__ import annotations

import hashlib
import re

from streamsql.plan.local_window_agg import LocalWindowAggregate
from streamsql.plan.nodes import Exchange, PlanNode, WindowAggregate

#: Details of a node that parallelism decides, not the query: left out of its id.
_PHYSICAL = re.compile(r",? ?(phase|parallelism|partition_keys|shuffle_keys)=\[[^\]]*\]")


def operator_ids(roots: tuple[PlanNode, ...]) -> dict[int, str]:
    """``id(node)`` -> the node's operator id, for every node of the plan."""
    ids: dict[int, str] = {}
    seen: dict[str, int] = {}

    def visit(node: PlanNode, path: str) -> None:
        if id(node) in ids:
            return
        inputs = node.inputs
        if isinstance(node, Exchange | LocalWindowAggregate):
            for child in inputs:
                visit(child, path)
            ids[id(node)] = ""
            return
        for i, child in enumerate(inputs):
            visit(child, f"{path}/{i}" if len(inputs) > 1 else path)
        text = _signature(node)
        n = seen.get(text, 0)
        seen[text] = n + 1
        ids[id(node)] = f"{text}#{n}" if n else text

    for i, root in enumerate(roots):
        visit(root, str(i))
    return ids


def fingerprint(roots: tuple[PlanNode, ...]) -> str:
    """A hash of every operator id, in plan order: equal for the same query at any
    parallelism, different for a changed query.
    """
    ids = [uid for uid in operator_ids(roots).values() if uid]
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _signature(node: PlanNode) -> str:
    name = "WindowAggregate" if isinstance(node, WindowAggregate) else node.name
    text = node.describe()
    text = name + text[len(node.name) :]
    return _PHYSICAL.sub("", text)
