"""Stateless row operators: Filter and Project (vectorized over whole batches)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from streamsql.expr import compile_expr, compile_predicate
from streamsql.plan.changelog import OP
from streamsql.plan.nodes import Filter, Project
from streamsql.runtime.operators.base import Operator


class FilterOperator(Operator):
    """Keeps the rows whose condition is TRUE (FALSE and NULL are dropped)."""

    def __init__(self, node: Filter) -> None:
        self.predicate = compile_predicate(node.condition, node.input.schema)

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        mask = self.predicate.evaluate(batch, self.ctx.eval_context())
        if isinstance(mask, pa.ChunkedArray):
            mask = mask.combine_chunks()
        kept = batch.filter(mask)
        return [kept] if kept.num_rows else []


class ProjectOperator(Operator):
    """Computes the output columns from the input columns."""

    def __init__(self, node: Project) -> None:
        schema = node.input.schema
        self.names = [n for n, _ in node.exprs]
        self.exprs = [compile_expr(e, schema) for _, e in node.exprs]
        self.schema = node.schema

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        ectx = self.ctx.eval_context()
        arrays = []
        for compiled in self.exprs:
            values = compiled.evaluate(batch, ectx)
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            arrays.append(values)
        out = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if OP in batch.schema.names:  # a changelog keeps its row kinds
            out = out.append_column(OP, batch.column(OP))
        return [out]
