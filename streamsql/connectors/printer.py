"""The print connector: writes every row to stdout (or stderr) as Flink's print sink does.

A row prints as ``+I[1, foo, 2020-04-15T08:05, null]``: its changelog kind, then the values as
Java's Row.toString shows them. With 'print-identifier' the line starts ``identifier> ``; at
parallelism > 1 the 1-based instance number is added (``identifier:2> `` or ``2> ``).
"""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.connectors.base import (
    Connector,
    Option,
    Sink,
    SinkContext,
    TableContext,
    register,
)
from streamsql.connectors.formats.javatext import flink_text, join
from streamsql.errors import ExecError

#: Changelog kinds by the value of the ``_op`` column.
KINDS = pa.array(["+I", "-U", "+U", "-D"])


def line_prefix(identifier: str, instance: int, parallelism: int) -> str:
    """What starts every line, as Flink's PrintSinkOutputWriter builds it.

    >>> line_prefix("out", 1, 4), line_prefix("", 1, 4), line_prefix("out", 0, 1)
    ('out:2> ', '2> ', 'out> ')
    """
    prefix = identifier
    if parallelism > 1:
        prefix += (":" if prefix else "") + str(instance + 1)
    return prefix + "> " if prefix else ""


def format_rows(batch: pa.RecordBatch, prefix: str = "") -> str:
    """The lines for a batch (each ending in a newline), built column by column."""
    if batch.num_rows == 0:
        return ""
    names = [n for n in batch.schema.names if n != "_op"]
    texts = [flink_text(batch.column(n)) for n in names]
    kinds: pa.Array | str = "+I"
    if "_op" in batch.schema.names:
        ops = batch.column("_op")
        if ops.null_count or pc.max(ops).as_py() > 3 or pc.min(ops).as_py() < 0:
            raise ExecError("the _op column holds a value that is not a changelog kind (0..3)")
        kinds = KINDS.take(ops)
    body = [pc.binary_join_element_wise(*texts, ", ")] if texts else []
    lines = join(prefix, kinds, "[", *body, "]\n")
    if isinstance(lines, pa.Scalar):  # no columns and no _op: every line is the same
        return lines.as_py() * batch.num_rows
    whole = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    return pc.binary_join(whole, "")[0].as_py()


class PrintSink(Sink):
    """Formats each batch with pyarrow and writes it with one call."""

    # Not transactional: lines are printed as rows arrive, so a job restarted from a
    # checkpoint prints the rows since that checkpoint again, even with exactly-once on.
    guarantee = "at-least-once"

    def __init__(self, ctx: SinkContext, identifier: str, stderr: bool) -> None:
        super().__init__()
        self.ctx = ctx
        self.stderr = stderr
        self.prefix = line_prefix(identifier, ctx.instance, ctx.parallelism)

    def _stream(self) -> Any:
        if self.stderr:
            return sys.stderr
        return self.ctx.stdout if self.ctx.stdout is not None else sys.stdout

    def write(self, batch: pa.RecordBatch) -> None:
        text = format_rows(batch, self.prefix)
        if text:
            stream = self._stream()
            stream.write(text)
            stream.flush()
        self.counters["rows_written"] += batch.num_rows

    def flush(self) -> None:
        self._stream().flush()


@register
class PrintConnector(Connector):
    """``'connector' = 'print'``: a sink for looking at results."""

    name = "print"
    sink_class = PrintSink

    def accepts_updates(self, table: TableContext) -> bool:
        return True  # it prints each change with its row kind

    sink_options = (
        Option("print-identifier", "string", help="a prefix for every line"),
        Option("standard-error", "bool", False, help="print to stderr instead of stdout"),
        Option("sink.parallelism", "int", help="instances of the sink (the planner decides)"),
    )

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        opts = self.validate(table, "sink")
        return PrintSink(ctx, opts.get("print-identifier", ""), opts["standard-error"])

    def describe(self, table: TableContext) -> str:
        ident = table.options.get("print-identifier")
        return f"print(print-identifier={ident})" if ident else "print"
