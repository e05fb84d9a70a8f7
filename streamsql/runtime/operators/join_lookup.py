"""Placeholder: the lookup join operator."""

from __future__ import annotations

from streamsql.runtime.operators.base import Operator


class LookupJoinOperator(Operator):
    def __init__(self, node) -> None:
        raise NotImplementedError("lookup joins are not implemented yet")
