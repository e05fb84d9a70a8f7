"""The blackhole connector: a sink that discards every row (for benchmarks and tests)."""

from __future__ import annotations

import pyarrow as pa

from streamsql.connectors.base import Connector, Sink, SinkContext, TableContext, register


class BlackholeSink(Sink):
    """Counts the rows it is given and keeps none of them."""

    # Not transactional: after a restart from a checkpoint the rows since it are counted
    # again (there is nothing to publish at a commit).
    guarantee = "at-least-once"

    def write(self, batch: pa.RecordBatch) -> None:
        self.counters["rows_written"] += batch.num_rows


@register
class BlackholeConnector(Connector):
    """``'connector' = 'blackhole'``: takes no options."""

    name = "blackhole"
    sink_class = BlackholeSink

    def accepts_updates(self, table: TableContext) -> bool:
        return True

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        self.validate(table, "sink")
        return BlackholeSink()
