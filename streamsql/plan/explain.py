"""EXPLAIN for logical plans: one line per node, inputs indented below their consumer."""

from __future__ import annotations

from streamsql.plan.nodes import PlanNode, walk


def explain_logical(roots: tuple[PlanNode, ...], *, physical: bool = False) -> str:
    """The plan as an indented tree; a node shared by several consumers (a source read
    once for several sinks) is printed once and referred to as ``Reused(#n)`` after that.
    """
    consumers: dict[int, int] = {}
    for node in walk(roots):
        for child in node.inputs:
            consumers[id(child)] = consumers.get(id(child), 0) + 1
    shared_ids: dict[int, int] = {}
    lines: list[str] = []

    def visit(node: PlanNode, prefix: str, child_prefix: str) -> None:
        if id(node) in shared_ids:
            lines.append(f"{prefix}Reused(#{shared_ids[id(node)]})")
            return
        text = node.describe(physical=physical)
        if consumers.get(id(node), 0) > 1:
            shared_ids[id(node)] = len(shared_ids) + 1
            text += f"  [#{shared_ids[id(node)]}, shared by {consumers[id(node)]} consumers]"
        lines.append(prefix + text)
        for child in node.inputs:
            visit(child, child_prefix + "+- ", child_prefix + "   ")

    for root in roots:
        visit(root, "", "")
    return "\n".join(lines)
