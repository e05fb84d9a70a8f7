"""The job-wide writer of late rows: one connector sink for the table named by
'table.exec.late-rows.sink', shared by every windowed operator instance of the job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np
import pyarrow as pa

from streamsql.catalog import CatalogTable
from streamsql.connectors.base import Sink, SinkContext
from streamsql.errors import ExecError, StreamSQLError
from streamsql.plan.late_rows import SETTING
from streamsql.runtime.timeutil import from_ms


class LateRowWriter:
    """Conforms late rows to the table (by column name; ``watermark`` and ``operator``
    filled in, other missing columns NULL) and writes them with the table's connector.

    A failure to write fails the job: a late row is never dropped without a trace.
    """

    def __init__(self, table: CatalogTable, job_name: str, stdout: TextIO | None = None) -> None:
        self.table = table
        self.schema = table.physical_schema
        # A name of its own, so that a filesystem table written by the job as well gets
        # part files that do not collide with the main sink's.
        self.context = SinkContext(
            instance=0, parallelism=1, stdout=stdout, job_name=f"{job_name}-late"
        )
        self.sink: Sink | None = None
        self.rows = 0
        self.closed = False
        # Windowed operators of every instance write here, on the executor's threads.
        self._lock = threading.Lock()

    def open(self) -> None:
        def start() -> Sink:
            sink = self.table.connector.create_sink(self.table.context, self.context)
            sink.open()
            return sink

        self.sink = self._guard("open", start)

    def write(self, rows: pa.Table | pa.RecordBatch, watermark: int, operator: str) -> None:
        """Write ``rows`` that missed ``watermark`` (epoch ms), dropped by ``operator``."""
        if not rows.num_rows:
            return
        batch = self.conform(rows, watermark, operator)
        sink = self.sink
        assert sink is not None, "the late-row writer is not open"
        with self._lock:
            self._guard("write", lambda: sink.write(batch))
            self.rows += batch.num_rows

    def conform(
        self, rows: pa.Table | pa.RecordBatch, watermark: int, operator: str
    ) -> pa.RecordBatch:
        n = rows.num_rows
        names = rows.schema.names
        arrays = []
        for f in self.schema:
            if f.name == "watermark":
                col = from_ms(np.full(n, watermark, dtype=np.int64))
            elif f.name == "operator":
                col = pa.repeat(pa.scalar(operator, pa.string()), n)
            elif f.name in names:
                col = rows.column(f.name)
                if isinstance(col, pa.ChunkedArray):
                    col = col.combine_chunks()
            else:
                col = pa.nulls(n, f.type)
            try:
                arrays.append(col if col.type == f.type else col.cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ExecError(
                    f"a late row does not fit column '{f.name}' of '{self.table.name}' "
                    f"('{SETTING}'): {e}"
                ) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def flush(self) -> None:
        """Make the late rows written so far durable (with the sinks, at checkpoints)."""
        with self._lock:
            if self.sink is not None and not self.closed:
                self._guard("flush", self.sink.flush)

    def close(self) -> None:
        """End of the job (or a clean stop): publish what was written."""
        with self._lock:
            if self.sink is None or self.closed:
                return
            self.closed = True
            self._guard("close", self.sink.close)

    def _guard(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except StreamSQLError as e:
            raise ExecError(
                f"writing late rows to '{self.table.name}' ('{SETTING}') failed: {e.message}",
                hint=e.hint,
            ) from e
        except Exception as e:
            raise ExecError(
                f"writing late rows to '{self.table.name}' ('{SETTING}') failed at {what}: "
                f"{type(e).__name__}: {e}"
            ) from e
