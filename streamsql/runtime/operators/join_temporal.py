"""Placeholder: the temporal join operator."""

from __future__ import annotations

from streamsql.runtime.operators.base import Operator


class TemporalJoinOperator(Operator):
    def __init__(self, node) -> None:
        raise NotImplementedError("temporal joins are not implemented yet")
