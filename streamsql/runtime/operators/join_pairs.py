"""Vectorized building blocks shared by the join operators: which rows of two tables
match (equal keys, NULL never equal, then the residual condition), and the output batch
for matched and NULL-padded pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.expr import EvalContext, compile_predicate
from streamsql.plan.changelog import OP, OP_TYPE

if TYPE_CHECKING:
    from streamsql.plan.join_nodes import Join

_LI, _RI = "__join_li", "__join_ri"


class PairMatcher:
    """Finds the matching pairs of a left and a right table for one join.

    ``schema`` is the join's output schema (left columns, then right columns), over which
    ``condition`` (the residual predicate, or None) is evaluated.
    """

    def __init__(
        self,
        left_keys: tuple[str, ...],
        right_keys: tuple[str, ...],
        schema: pa.Schema,
        condition=None,
    ) -> None:
        self.left_keys = list(left_keys)
        self.right_keys = list(right_keys)
        self.schema = schema
        self.residual = compile_predicate(condition, schema) if condition is not None else None

    def pairs(
        self,
        left: pa.Table | pa.RecordBatch,
        right: pa.Table | pa.RecordBatch,
        ectx: EvalContext | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row indices ``(li, ri)`` of every matching pair, ordered by left row, then right
        row. Without keys every pair is a candidate (a cross product, for small inputs).
        """
        if not left.num_rows or not right.num_rows:
            return _EMPTY, _EMPTY
        if self.left_keys:
            li, ri = self._equi(left, right)
        else:
            li = np.repeat(np.arange(left.num_rows), right.num_rows)
            ri = np.tile(np.arange(right.num_rows), left.num_rows)
        if self.residual is not None and len(li):
            joined = combine(self.schema, left, right, li, ri)
            mask = self.residual.evaluate(joined, ectx or EvalContext())
            keep = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
            li, ri = li[keep], ri[keep]
        return li, ri

    def _equi(self, left, right) -> tuple[np.ndarray, np.ndarray]:
        lk = pa.table(
            {
                **{f"k{i}": left.column(k) for i, k in enumerate(self.left_keys)},
                _LI: pa.array(np.arange(left.num_rows, dtype=np.int64)),
            }
        )
        rk = pa.table(
            {
                **{f"k{i}": right.column(k) for i, k in enumerate(self.right_keys)},
                _RI: pa.array(np.arange(right.num_rows, dtype=np.int64)),
            }
        )
        keys = [f"k{i}" for i in range(len(self.left_keys))]
        lk = lk.filter(_not_null(lk, keys))
        rk = rk.filter(_not_null(rk, keys))
        if not lk.num_rows or not rk.num_rows:
            return _EMPTY, _EMPTY
        joined = lk.join(rk, keys=keys, join_type="inner", use_threads=False)
        li = joined.column(_LI).to_numpy()
        ri = joined.column(_RI).to_numpy()
        # One combined key sorts ~6x faster than lexsort on two (fits int64 easily).
        order = np.argsort(li * right.num_rows + ri, kind="stable")
        return li[order], ri[order]


_EMPTY = np.zeros(0, dtype=np.int64)


def _not_null(table: pa.Table, keys: list[str]) -> pa.Array:
    mask = None
    for k in keys:
        valid = pc.is_valid(table.column(k))
        mask = valid if mask is None else pc.and_(mask, valid)
    return mask


def combine(
    schema: pa.Schema,
    left: pa.Table | pa.RecordBatch,
    right: pa.Table | pa.RecordBatch,
    li: np.ndarray,
    ri: np.ndarray,
) -> pa.RecordBatch:
    """The joined rows ``left[li] ++ right[ri]`` as a batch of ``schema``; an index of -1
    stands for a NULL-padded side.
    """
    n_left = len(left.schema)
    arrays = []
    for side, idx, fields in (
        (left, li, [schema.field(i) for i in range(n_left)]),
        (right, ri, [schema.field(i) for i in range(n_left, len(schema))]),
    ):
        for col, f in zip(side.columns, fields, strict=True):
            arrays.append(_take(col, idx, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _take(column, idx: np.ndarray, typ: pa.DataType) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(idx) and idx.min() < 0:
        masked = pa.array(idx, mask=idx < 0)  # NULL index -> NULL value
        out = column.take(masked)
    else:
        out = column.take(pa.array(idx, pa.int64()))
    return out if out.type == typ else out.cast(typ)


def unmatched(n: int, matched: np.ndarray) -> np.ndarray:
    """Indices in ``range(n)`` that do not occur in ``matched``."""
    seen = np.zeros(n, dtype=bool)
    seen[matched] = True
    return np.flatnonzero(~seen)


def with_ops(batch: pa.RecordBatch, ops: np.ndarray | int) -> pa.RecordBatch:
    """``batch`` with an ``_op`` column (one row kind for all rows, or one per row)."""
    if isinstance(ops, int):
        ops = np.full(batch.num_rows, ops, dtype=np.int8)
    return batch.append_column(OP, pa.array(ops.astype(np.int8), OP_TYPE))


def input_hash_keys(node: Join, index: int) -> tuple[str, ...]:
    """The columns the exchange in front of input ``index`` hashes: that input's side of
    the equi-keys (``choose_grouping_keys``), or () when the join runs one instance. A
    checkpoint keys each side's state by the same columns, so that on a restore at another
    parallelism a row of state goes where the router sends that side's rows with its key.
    """
    if node.shuffle_keys is not None:
        return tuple(node.shuffle_keys[index])
    return (node.left_keys, node.right_keys)[index]
