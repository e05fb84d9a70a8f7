"""Placeholder: the regular join operator."""

from __future__ import annotations

from streamsql.runtime.operators.base import Operator


class RegularJoinOperator(Operator):
    def __init__(self, node) -> None:
        raise NotImplementedError("regular joins are not implemented yet")
