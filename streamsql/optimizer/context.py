"""What rules may know about the session: parallelism, switched-off rules and the
aggregation phase strategy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerContext:
    parallelism: int = 1
    disabled: frozenset[str] = frozenset()
    #: 'table.optimizer.agg-phase-strategy': AUTO, ONE_PHASE or TWO_PHASE.
    agg_phase: str = "AUTO"
