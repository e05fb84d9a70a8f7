"""Plan invariants checked after every optimizer rule."""

from __future__ import annotations

from streamsql.errors import PlanError
from streamsql.plan.nodes import PlanNode, walk


def check_plan(roots: tuple[PlanNode, ...], after: str) -> None:
    """Every node's schema must be computable and every input column it names must exist.

    Nodes validate themselves on construction; here we only re-derive each schema so that a
    rule which produced an inconsistent plan fails loudly, naming the rule.
    """
    for node in walk(roots):
        try:
            node.schema  # noqa: B018 - derive it to validate
        except Exception as e:  # a broken rule is a bug: say which one
            raise PlanError(f"internal: plan invalid after rule {after}: {e}") from e
        if node.parallelism < 0:
            raise PlanError(f"internal: negative parallelism after rule {after}")
