"""Small helpers for operator unit tests: a plan node with a fixed schema, a context."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from streamsql import duck
from streamsql.config import Settings
from streamsql.plan.nodes import PlanNode
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.state import StateStore


@dataclass(frozen=True, eq=False)
class Input(PlanNode):
    """A leaf with a given schema, standing in for whatever feeds the operator."""

    fixed: pa.Schema = field(default_factory=lambda: pa.schema([]))
    rowtime: str | None = None

    @property
    def schema(self) -> pa.Schema:
        return self.fixed

    @property
    def time_attr(self) -> str | None:
        return self.rowtime


def context(instance: int = 0, **settings: str) -> OperatorContext:
    """A context with default settings, changed by ``settings`` (pass them as
    ``**{"key": "value"}``, as SET spells them).
    """
    values = Settings.defaults()
    for key, value in settings.items():
        values.set(key, value)
    return OperatorContext(
        task_id=1,
        node_index=0,
        instance=instance,
        parallelism=1,
        state=StateStore(duck.connect(), prefix="test_"),
        metrics=OperatorMetrics(1, instance, "op"),
        settings=values,
    )


def opened(op: Operator, ctx: OperatorContext | None = None) -> Operator:
    op.open(ctx or context())
    return op


def feed(op: Operator, batch: pa.RecordBatch) -> list[dict]:
    return [row for out in op.process_batch(batch, 0) for row in out.to_pylist()]


def advance(op: Operator, watermark: int) -> list[dict]:
    op.ctx.watermark = watermark
    return [row for out in op.on_watermark(watermark) for row in out.to_pylist()]
