"""What rules may know about the session: parallelism and switched-off rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerContext:
    parallelism: int = 1
    disabled: frozenset[str] = frozenset()
