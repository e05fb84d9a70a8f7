"""Sink operators: write into a connector's sink, or collect rows for the caller."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

import pyarrow as pa

from streamsql.connectors.base import SinkContext
from streamsql.errors import ExecError
from streamsql.plan.changelog import OP
from streamsql.plan.nodes import Collect, Sink
from streamsql.runtime.operators.base import Operator, OperatorContext


class SinkOperator(Operator):
    """Casts rows to the table's declared types and hands them to the connector."""

    def __init__(self, node: Sink) -> None:
        self.node = node
        self.table = node.table
        self.schema = node.table.physical_schema
        self.handle: object = None  # the last pre-commit's (exactly-once checkpoints)

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        sink_ctx = SinkContext(
            instance=ctx.instance,
            parallelism=ctx.parallelism,
            stdout=ctx.stdout,
            job_name=ctx.job_name,
            job_id=ctx.job_id,
            exactly_once=ctx.exactly_once,
        )
        self.sink = self.table.connector.create_sink(self.table.context, sink_ctx)
        self.sink.open()

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        ops = batch.column(OP) if OP in batch.schema.names else None
        if ops is not None:
            batch = batch.drop_columns([OP])
        if batch.schema != self.schema:
            batch = _cast(batch, self.schema, self.table.name)
        if ops is not None:
            batch = batch.append_column(OP, ops)
        self.sink.write(batch)
        self.ctx.metrics.add("rows_written", batch.num_rows)
        return ()

    def on_barrier(self, epoch: int) -> None:
        """Exactly-once: pre-commit what was written before the barrier (the checkpoint
        keeps ``handle``; the coordinator commits it once the checkpoint is recorded).
        Otherwise: make it visible now.
        """
        if self.transactional:
            self.handle = self.sink.pre_commit(epoch)
        else:
            self.sink.flush()

    @property
    def transactional(self) -> bool:
        return self.ctx.exactly_once and self.sink.transactional

    def close(self) -> Iterable[pa.RecordBatch]:
        self.sink.close()
        return ()

    def stop(self) -> None:
        self.sink.close()


def _cast(batch: pa.RecordBatch, schema: pa.Schema, table: str) -> pa.RecordBatch:
    arrays = []
    for column, field in zip(batch.columns, schema, strict=True):
        try:
            arrays.append(column.cast(field.type) if column.type != field.type else column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ExecError(
                f"a value does not fit column '{field.name}' of '{table}': {e}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class ResultBuffer:
    """Where Collect operators put result batches until the caller takes them (safe to use
    from the executor's threads while the caller drains it).
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.batches: deque[pa.RecordBatch] = deque()
        self.rows = 0
        self._lock = threading.Lock()

    def put(self, batch: pa.RecordBatch) -> None:
        with self._lock:
            self.batches.append(batch)
            self.rows += batch.num_rows

    def drain(self) -> list[pa.RecordBatch]:
        with self._lock:
            out = list(self.batches)
            self.batches.clear()
        return out


class CollectOperator(Operator):
    def __init__(self, node: Collect, buffer: ResultBuffer) -> None:
        self.buffer = buffer

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        self.buffer.put(batch)
        self.ctx.metrics.add("rows_written", batch.num_rows)
        return ()


__all__ = ["CollectOperator", "ResultBuffer", "SinkOperator"]
