"""The filesystem sink: rolling part files that become visible only when complete.

A part file is written as ``.part-<job>-<instance>-<n>.<ext>.inprogress`` (hidden: readers
skip names starting with '.') and renamed to ``part-<job>-<instance>-<n>.<ext>`` when it
rolls (size or age), on flush() (checkpoints) and on close(); a partly written file is never
visible. Numbering continues after the highest part already in the directory.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from streamsql import duck
from streamsql.connectors.base import Sink
from streamsql.connectors.formats.writers import FileWriter
from streamsql.errors import ExecError

WriterFactory = Callable[[str, duck.Connection], FileWriter]


class FileSink(Sink):
    """Writes one sink instance's rows into rolling part files of a directory."""

    # Files are published on flush(), not committed with the checkpoint's epoch: a restart
    # after a flush and before the checkpoint completes can write rows again.
    guarantee = "at-least-once"

    def __init__(
        self,
        directory: str,
        schema: pa.Schema,
        ext: str,
        make_writer: WriterFactory,
        *,
        job: str,
        instance: int,
        max_bytes: int,
        max_age_ms: int,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.schema = schema
        self.ext = ext
        self.make_writer = make_writer
        self.prefix = f"part-{re.sub(r'[^A-Za-z0-9_.-]', '_', job)}-{instance}-"
        self.max_bytes, self.max_age_ms = max_bytes, max_age_ms
        self.writer: FileWriter | None = None
        self._inprogress = ""
        self.part = 0
        self.opened_at = 0.0
        self.published: list[str] = []  # files made visible so far, in order
        self._opened = False
        self._con: duck.Connection | None = None

    def open(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        self.part = self._next_part()
        self._opened = True

    def write(self, batch: pa.RecordBatch) -> None:
        batch = self._conform(batch)
        if batch.num_rows == 0:
            return
        if self.writer is not None and self._age_ms() >= self.max_age_ms:
            self._roll()
        if self.writer is None:
            self._start()
        assert self.writer is not None
        self.writer.write(batch)
        self.counters["rows_written"] += batch.num_rows
        if self.writer.size() >= self.max_bytes:
            self._roll()

    def flush(self) -> None:
        self._roll()

    def close(self) -> None:
        self._roll()
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> duck.Connection:
        if self._con is None:
            self._con = duck.connect(threads=1)
        return self._con

    def _start(self) -> None:
        if not self._opened:
            self.open()
        self._inprogress = os.path.join(self.directory, f".{self._name()}.inprogress")
        self.writer = self.make_writer(self._inprogress, self.con)
        self.opened_at = time.monotonic()

    def _roll(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        final = os.path.join(self.directory, self._name())
        os.replace(self._inprogress, final)
        self.published.append(final)
        self.writer = None
        self.part += 1

    def _name(self) -> str:
        return f"{self.prefix}{self.part}.{self.ext}"

    def _age_ms(self) -> float:
        return (time.monotonic() - self.opened_at) * 1000

    def _next_part(self) -> int:
        pattern = re.compile(r"^\.?" + re.escape(self.prefix) + r"(\d+)\.")
        numbers = [int(m.group(1)) for n in os.listdir(self.directory) if (m := pattern.match(n))]
        return max(numbers) + 1 if numbers else 0

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The table's columns in declaration order; an update or delete is an error."""
        if "_op" in batch.schema.names:
            ops = batch.column("_op")
            if ops.null_count or pc.any(pc.not_equal(ops, 0)).as_py():
                raise ExecError(
                    "the filesystem sink is append-only and got an update or delete",
                    hint="write an append-only result (a windowed aggregate, a filter) or use a "
                    "sink with a PRIMARY KEY",
                )
        if batch.schema.names == self.schema.names and batch.schema.types == self.schema.types:
            return batch
        columns = []
        for f in self.schema:
            if f.name not in batch.schema.names:
                raise ExecError(f"the batch written to the sink has no column '{f.name}'")
            col = batch.column(f.name)
            columns.append(col if col.type == f.type else col.cast(f.type))
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)
