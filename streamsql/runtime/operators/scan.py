"""Scan: turn a source's raw batches into the table's rows and generate watermarks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from streamsql.errors import ExecError
from streamsql.expr import compile_expr
from streamsql.plan.nodes import Scan
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.timeutil import MIN_WATERMARK, to_ms


class ScanOperator(Operator):
    """Adds computed columns, checks the time attribute, and after every batch raises the
    source watermark to the largest value of the WATERMARK expression seen so far.

    On processing time (``Scan.proctime``) the PROCTIME() column is stamped with the clock,
    one reading per batch, and the watermark is the clock: the driver asks for it every
    round (``clock_watermark``), so windows close while no rows come. A stamp is always
    later than the watermark, so no row is ever late.
    """

    def __init__(self, node: Scan) -> None:
        self.node = node
        table = node.table
        self.outputs = node.columns
        physical = table.physical_schema
        on_clock = node.proctime and node.watermarks
        #: The PROCTIME() column whose clock drives the watermark, if the scan runs on it.
        self.proctime = table.proctime_attribute if on_clock else None
        rowtime = table.time_attribute if node.watermarks and not on_clock else None
        wanted = set(node.columns) | ({rowtime} if rowtime else set())
        computed = [c for c in table.columns if c.computed and c.name in wanted]
        needed = {c.name for c in table.columns if not c.computed and c.name in wanted}
        for c in computed:
            needed |= {col.name for col in c.expr.find_all(exp.Column)}
        wm_expr = table.watermark.expr if table.watermark and rowtime else None
        if wm_expr is not None:
            needed |= {c.name for c in wm_expr.find_all(exp.Column) if c.name in physical.names}
        #: Physical columns the source must deliver, in table order.
        self.physical_columns = tuple(n for n in physical.names if n in needed)
        read_schema = pa.schema([physical.field(n) for n in self.physical_columns])
        self.computed = [(c.name, compile_expr(c.expr, read_schema)) for c in computed]
        full = read_schema
        for name, compiled in self.computed:
            full = full.append(pa.field(name, compiled.type))
        self.rowtime = rowtime
        self.wm = compile_expr(wm_expr, full) if wm_expr is not None else None
        self.watermark = MIN_WATERMARK

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        arrays = list(batch.columns)
        names = list(batch.schema.names)
        if self.computed:
            ectx = self.ctx.eval_context()
            if self.proctime is not None:
                stamp = max(self.ctx.now_ms(), self.watermark + 1)
                ectx = dataclasses.replace(ectx, now_ms=lambda: stamp)
            for name, compiled in self.computed:
                arrays.append(_array(compiled.evaluate(batch, ectx)))
                names.append(name)
            batch = pa.RecordBatch.from_arrays(arrays, names=names)
        if self.rowtime is not None and batch.num_rows:
            self._advance_watermark(batch)
        return [batch.select(list(self.outputs))]

    def clock_watermark(self) -> int:
        """The processing-time watermark: every row stamped from now on is later."""
        self.watermark = max(self.watermark, self.ctx.now_ms() - 1)
        return self.watermark

    def _advance_watermark(self, batch: pa.RecordBatch) -> None:
        times = batch.column(self.rowtime)
        if times.null_count:
            raise ExecError(
                f"table '{self.node.table.name}': the time attribute '{self.rowtime}' is NULL "
                f"in {times.null_count} row(s); event time must not be NULL",
                hint="fix the data, or compute a non-NULL time column, e.g. "
                f"COALESCE({self.rowtime}, TIMESTAMP '1970-01-01 00:00:00')",
            )
        assert self.wm is not None
        values = _array(self.wm.evaluate(batch, self.ctx.eval_context()))
        top = pc.max(to_ms(values)).as_py()
        if top is not None and top > self.watermark:
            self.watermark = top


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
