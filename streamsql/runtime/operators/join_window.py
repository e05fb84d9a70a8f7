"""Placeholder: the window join operator."""

from __future__ import annotations

from streamsql.runtime.operators.base import Operator


class WindowJoinOperator(Operator):
    def __init__(self, node) -> None:
        raise NotImplementedError("window joins are not implemented yet")
