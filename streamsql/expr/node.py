"""The compiled form of one expression node: a closure over a batch, its type and its traits.

A closure takes a ``pa.RecordBatch`` and an :class:`EvalContext` and returns a ``pa.Array`` of
the batch's length or a ``pa.Scalar`` (a constant, broadcast only at the very end). Closures of
pure functions return a scalar when all their inputs are scalars, which is what constant folding
relies on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

Value = pa.Array | pa.Scalar


@dataclass(frozen=True)
class EvalContext:
    """What an expression may read besides its input batch.

    ``watermark_ms`` feeds ``CURRENT_WATERMARK()`` (None: no watermark yet); ``now_ms`` gives the
    processing time for ``NOW()``, ``PROCTIME()`` and friends (None: the wall clock);
    ``time_zone`` is the session time zone (``'table.local-time-zone'``).
    """

    watermark_ms: int | None = None
    now_ms: Callable[[], int] | None = None
    time_zone: str = "UTC"

    def current_ms(self) -> int:
        """Processing time in epoch milliseconds."""
        if self.now_ms is not None:
            return int(self.now_ms())
        return time.time_ns() // 1_000_000


Fn = Callable[[pa.RecordBatch, EvalContext], Value]


@dataclass(frozen=True)
class Node:
    """A compiled expression node.

    ``contextual`` nodes read the context (time zone, clock, watermark) and are never folded;
    ``can_fail`` nodes may raise on some rows (CAST of a string), so CASE/IF/COALESCE/AND/OR
    evaluate them only on the rows that reach them; ``const`` is the value of a folded constant.
    """

    fn: Fn
    type: pa.DataType
    expr: exp.Expression
    columns: frozenset[str] = frozenset()
    deterministic: bool = True
    contextual: bool = False
    can_fail: bool = False
    const: pa.Scalar | None = field(default=None, compare=False)

    @property
    def is_const(self) -> bool:
        return self.const is not None


def null_of(t: pa.DataType) -> pa.Scalar:
    """A typed NULL scalar."""
    return pa.scalar(None, t)


def constant(value: pa.Scalar) -> Fn:
    """A closure that returns ``value`` for every batch."""
    return lambda batch, ctx: value


def as_array(v: Value, n: int) -> pa.Array:
    """``v`` as an array of length ``n`` (scalars are repeated)."""
    if isinstance(v, pa.Scalar):
        if n == 0:
            return pa.array([], v.type)
        return pa.repeat(v, n) if v.type != pa.null() else pa.nulls(n)
    if isinstance(v, pa.ChunkedArray):
        return v.combine_chunks()
    return v


def is_scalar(v: Value) -> bool:
    return isinstance(v, pa.Scalar)


def lift(fn: Callable[..., pa.Array]) -> Callable[..., Value]:
    """Wrap an array-only function so that all-scalar arguments give a scalar result.

    Arrays must be of equal length; scalar arguments are broadcast to it.
    """

    def wrapped(*args: Value) -> Value:
        lengths = [len(a) for a in args if not is_scalar(a)]
        if not lengths:
            out = fn(*(as_array(a, 1) for a in args))
            return out[0] if not is_scalar(out) else out
        n = lengths[0]
        return fn(*(as_array(a, n) for a in args))

    return wrapped


def lift_first(fn: Callable[..., pa.Array]) -> Callable[..., Value]:
    """Like :func:`lift` for functions whose first argument is the only Arrow value."""

    def wrapped(v: Value, *rest: object) -> Value:
        if is_scalar(v):
            out = fn(as_array(v, 1), *rest)
            return out if is_scalar(out) else out[0]
        return fn(v, *rest)

    return wrapped


def bool_mask(v: Value, n: int) -> pa.Array:
    """A boolean array with NULL read as false."""
    if is_scalar(v):
        return as_array(pa.scalar(bool(v.as_py()), pa.bool_()), n)
    return pc.fill_null(v, False)


def eval_where(node: Node, batch: pa.RecordBatch, ctx: EvalContext, mask: pa.Array) -> Value:
    """Evaluate ``node`` only on the rows where ``mask`` is true; other rows come back NULL.

    Nodes that cannot fail are evaluated on the whole batch (cheaper than filtering); the
    others see only the selected rows, so that e.g. ``CASE WHEN s SIMILAR TO '[0-9]+' THEN
    CAST(s AS INT) END`` does not fail on the rows the WHEN excludes.
    """
    if not node.can_fail or node.is_const:
        return node.fn(batch, ctx)
    selected = batch.filter(mask)
    if selected.num_rows == batch.num_rows:
        return node.fn(batch, ctx)
    part = node.fn(selected, ctx)
    if is_scalar(part):
        return part
    return pc.replace_with_mask(pa.nulls(batch.num_rows, node.type), mask, part)
