"""The datagen connector: random or sequential rows at a limited rate, as Flink's datagen.

Options (Flink's names): 'rows-per-second' (default 10000, for the whole table),
'number-of-rows' (absent: unbounded), 'scan.parallelism' (instances that generate, each its
share of the rows and of the rate), and per column 'fields.<col>.kind' (random | sequence),
'.min'/'.max', '.max-past', '.length', '.start'/'.end', '.null-rate'. Not in Flink: 'seed'
(default 0) makes the random values reproducible. A table is bounded when 'number-of-rows'
is set or a column is a sequence (it ends with the first exhausted sequence).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from streamsql.connectors.base import (
    SCAN_PARALLELISM,
    Connector,
    Option,
    Source,
    SourceContext,
    TableContext,
    parse_options,
    register,
)
from streamsql.connectors.datagen_spec import DatagenPlan, build_fields, check_field_keys
from streamsql.connectors.datagen_values import Rows, generate, now_ms
from streamsql.errors import ConfigError

#: An unbounded source with nothing due sleeps at most this long before returning empty.
MAX_IDLE_SLEEP_S = 0.1


class DatagenSource(Source):
    """One instance's share of the table's rows, never ahead of its share of the rate.

    A bounded table's rows are split into contiguous ranges (instance i of n gets rows
    [total*i/n, total*(i+1)/n)), so sequences and random values do not depend on the
    parallelism. An unbounded instance generates its own stream. The position is the number
    of rows this instance has emitted.
    """

    def __init__(self, plan: DatagenPlan, schema: pa.Schema, ctx: SourceContext) -> None:
        super().__init__()
        self.plan = plan
        self.schema = pa.schema([schema.field(c) for c in ctx.columns])
        self.batch_size = max(1, ctx.batch_size)
        total = plan.total_rows
        self.bounded = total is not None
        share = ctx.instance, ctx.parallelism
        self.first = total * share[0] // share[1] if total is not None else 0
        self.limit = total * (share[0] + 1) // share[1] - self.first if total is not None else None
        self.stream = 0 if self.bounded else ctx.instance + 1
        self.rate = plan.rows_per_second / ctx.parallelism
        self.emitted = 0
        self._clock: tuple[float, int] | None = None  # (start time, rows emitted then)

    def read(self) -> pa.RecordBatch | None:
        want = self.batch_size
        if self.limit is not None:
            want = min(want, self.limit - self.emitted)
            if want <= 0:
                return None
        n = self._due(want)
        rows = Rows(self.plan.seed, self.stream, self.first + self.emitted, n, now_ms())
        columns = [generate(self.plan.fields[f.name], rows) for f in self.schema]
        if columns:
            batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        else:
            batch = pa.RecordBatch.from_struct_array(pa.nulls(n, pa.struct([])))
        self.emitted += n
        self.counters["rows_read"] += n
        return batch

    def _due(self, want: int) -> int:
        """How many rows may go out now (row k of the run is due k/rate seconds after its
        start); sleeps while none is, except that an unbounded source gives up after a while.
        """
        if self._clock is None:
            self._clock = (time.monotonic(), self.emitted)
        start, base = self._clock
        while True:
            elapsed = time.monotonic() - start
            allowed = int(elapsed * self.rate) + 1 - (self.emitted - base)
            if allowed > 0:
                return min(want, allowed)
            wait = (self.emitted - base) / self.rate - elapsed
            if not self.bounded and wait > MAX_IDLE_SLEEP_S:
                time.sleep(MAX_IDLE_SLEEP_S)
                return 0
            time.sleep(max(wait, 0.0005))

    def position(self) -> dict[str, Any]:
        return {"rows": self.emitted}

    def seek(self, position: Mapping[str, Any]) -> None:
        self.emitted = int(position.get("rows", 0))
        self._clock = None


@register
class DatagenConnector(Connector):
    """``'connector' = 'datagen'``."""

    name = "datagen"
    source_options = (
        Option("rows-per-second", "int", 10000, help="rows per second for the whole table"),
        Option("number-of-rows", "int", help="rows in total (absent: unbounded)"),
        Option("seed", "int", 0, help="seed of the random values (not in Flink)"),
        SCAN_PARALLELISM,
        Option("fields.#.kind", "choice", choices=("random", "sequence")),
        Option("fields.#.min", "string", help="smallest random value"),
        Option("fields.#.max", "string", help="largest random value"),
        Option("fields.#.max-past", "duration", help="random TIMESTAMPs reach this far back"),
        Option("fields.#.length", "int", help="length of random strings, bytes and arrays"),
        Option("fields.#.start", "string", help="first value of a sequence"),
        Option("fields.#.end", "string", help="last value of a sequence"),
        Option("fields.#.null-rate", "string", help="share of NULLs, 0..1"),
    )

    def validate(self, table: TableContext, role: str) -> dict[str, Any]:
        if role == "source":
            check_field_keys(table.options, table.schema)
        opts = parse_options(self.name, table.options, self.options_for(role, table.options), role)
        if role == "source":
            self.plan(table, opts)
        return opts

    def plan(self, table: TableContext, opts: Mapping[str, Any] | None = None) -> DatagenPlan:
        """The table's options as a generation plan."""
        if opts is None:
            opts = self.validate(table, "source")
        if opts["rows-per-second"] <= 0:
            raise ConfigError("'rows-per-second' must be positive", option="rows-per-second")
        rows = opts.get("number-of-rows")
        if rows is not None and rows < 0:
            raise ConfigError("'number-of-rows' must not be negative", option="number-of-rows")
        fields = build_fields(opts, table.schema)
        return DatagenPlan(fields, opts["rows-per-second"], rows, opts["seed"])

    def is_bounded(self, table: TableContext) -> bool:
        return self.plan(table).total_rows is not None

    def create_source(self, table: TableContext, ctx: SourceContext) -> Source:
        missing = [c for c in ctx.columns if c not in table.schema.names]
        if missing:
            raise ValueError(f"datagen table '{table.name}' has no column {missing[0]!r}")
        return DatagenSource(self.plan(table), table.schema, ctx)

    def describe(self, table: TableContext) -> str:
        keys = ("rows-per-second", "number-of-rows")
        inner = ", ".join(f"{k}={table.options[k]}" for k in keys if k in table.options)
        return f"datagen({inner})" if inner else "datagen"
