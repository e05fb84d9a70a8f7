"""Placeholder: the interval join operator."""

from __future__ import annotations

from streamsql.runtime.operators.base import Operator


class IntervalJoinOperator(Operator):
    def __init__(self, node) -> None:
        raise NotImplementedError("interval joins are not implemented yet")
