"""Showing a SELECT's result in the shell: a table for a bounded query; for a continuous
one, its rows as they come — as a changelog (``+I/-U/+U/-D`` lines) or as a table that
updates in place — until the query ends (``LIMIT``) or Ctrl-C stops it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from streamsql.changelog import apply_changes
from streamsql.output import MAX_ROWS, print_rows, print_table, result_view, row_count
from streamsql.plan.changelog import OP
from streamsql.session import QueryHandle

#: How often the live table is drawn again (per second).
REFRESH_PER_S = 4
#: Result modes, as Flink's SQL client names them ('sql-client.execution.result-mode').
MODES = ("table", "changelog")


@dataclass
class ResultOptions:
    """The shell's settings for showing results (``.mode``, ``.maxrows``, ``.timer``)."""

    mode: str = "table"
    max_rows: int = MAX_ROWS
    timer: bool = False


def show_query(console: Console, handle: QueryHandle, options: ResultOptions) -> str:
    """Run the query and show its result; returns the line that ends it (rows and time)."""
    began = time.perf_counter()
    if not handle.planned.reads_unbounded:
        table = handle.to_arrow()
        print_table(console, table, options.max_rows, time.perf_counter() - began)
        return ""
    batches = handle.stream()
    try:
        if options.mode == "changelog":
            changes = _print_changelog(console, batches)
        else:
            changes = _live_table(console, batches, handle.schema, options.max_rows)
    except KeyboardInterrupt:
        batches.close()  # the job stops cleanly
        return f"stopped after {time.perf_counter() - began:.2f} s"
    return f"{changes:,} change(s) in {time.perf_counter() - began:.2f} s; the query ended"


def _print_changelog(console: Console, batches: Iterator[pa.RecordBatch]) -> int:
    changes = 0
    for batch in batches:
        changes += batch.num_rows
        print_rows(console, batch)
    return changes


class _Materialized:
    """The rows a changelog leaves in place so far, kept as an Arrow table: each refresh
    applies the changes that came since (vectorized, by :func:`apply_changes`).
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.updating = OP in schema.names
        self.rows = (
            schema.remove(schema.get_field_index(OP)) if self.updating else schema
        ).empty_table()
        self.pending: list[pa.RecordBatch] = []
        self.changes = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.changes += batch.num_rows

    def apply(self) -> pa.Table:
        """The result as it stands after every change added so far."""
        if self.pending:
            new = pa.Table.from_batches(self.pending, schema=self.schema)
            self.pending = []
            if self.updating:
                self.rows = apply_changes(self.rows, new)
            else:
                self.rows = pa.concat_tables([self.rows, new])
        return self.rows


def _live_table(
    console: Console, batches: Iterator[pa.RecordBatch], schema: pa.Schema, max_rows: int
) -> int:
    """Draw the result as a table that updates in place. An append-only result shows its
    latest rows; an updating one its first rows, as they stand now.
    """
    rows = _Materialized(schema)
    shown = max(3, min(max_rows, console.height - 8))
    began = time.perf_counter()

    def view() -> Group:
        table = rows.apply()
        part = table if rows.updating else table.slice(max(0, table.num_rows - shown))
        head = Text(
            f"{row_count(table.num_rows, shown)}, {rows.changes:,} change(s), "
            f"{time.perf_counter() - began:.1f} s — Ctrl-C stops the query",
            style="dim",
        )
        return Group(result_view(part, shown), head)

    with Live(view(), console=console, refresh_per_second=REFRESH_PER_S, transient=False) as live:
        last = 0.0
        for batch in batches:
            rows.add(batch)
            now = time.perf_counter()
            if now - last >= 1 / REFRESH_PER_S:
                live.update(view())
                last = now
        live.update(view())
    return rows.changes
