"""What the file format readers share: the read settings, decoded chunks and bad-row errors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from streamsql import duck
from streamsql.errors import ExecError

SKIP_HINT = "set 'format.ignore-parse-errors' = 'true' to skip malformed rows (they are counted)"


@dataclass
class ReadSpec:
    """Everything a format reader needs besides the file: columns, options, error policy."""

    schema: pa.Schema  # physical columns in declaration order
    columns: tuple[str, ...]  # the columns to deliver, a subset of the schema
    options: Mapping[str, Any]  # parsed connector options
    batch_size: int = 65536
    ignore_errors: bool = False
    #: Whether a reader may decode on pyarrow's thread pool (parquet): a scan of several
    #: instances already decodes on one thread each, and sharing the pool only adds waits.
    threads: bool = True
    #: Whether to decode the next chunks on a thread of their own (``read_ahead``).
    read_ahead: bool = False
    counters: dict[str, int] = field(default_factory=lambda: {"parse_errors_skipped": 0})
    _con: duck.Connection | None = None

    @functools.cached_property
    def fields(self) -> list[pa.Field]:
        return [self.schema.field(c) for c in self.columns]

    @functools.cached_property
    def out_schema(self) -> pa.Schema:
        return pa.schema(self.fields)

    @property
    def con(self) -> duck.Connection:
        """This reader's own DuckDB connection (text conversion), opened on first use."""
        if self._con is None:
            self._con = duck.connect(threads=1)  # one per source instance
            duck.run(self._con, "SET TimeZone = 'UTC'")  # zone-less TIMESTAMP_LTZ text is UTC
        return self._con

    def skipped(self, n: int) -> None:
        self.counters["parse_errors_skipped"] = self.counters.get("parse_errors_skipped", 0) + n

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


@dataclass(frozen=True)
class Chunk:
    """Decoded rows of one file and where the file continues after each of them.

    Text formats track the byte offset and line after every row (``next_offsets``, ``lines``);
    Parquet tracks the row number (``first_row``).
    """

    batch: pa.RecordBatch
    end: dict[str, int]  # the position after the whole chunk (skipped rows included)
    next_offsets: np.ndarray | None = None
    lines: np.ndarray | None = None
    first_row: int = 0

    def position_after(self, k: int) -> dict[str, int]:
        """The in-file position once the first ``k`` rows of the chunk are consumed."""
        if k >= self.batch.num_rows:
            return dict(self.end)
        if self.next_offsets is not None and self.lines is not None:
            return {"offset": int(self.next_offsets[k - 1]), "line": int(self.lines[k - 1]) + 1}
        return {"row": self.first_row + k}


@dataclass(frozen=True)
class BadRow:
    """One malformed row: its 1-based line and what is wrong with it."""

    line: int
    problem: str


@dataclass
class Problems:
    """The malformed rows of a chunk: how many, and the earliest (for the error message)."""

    count: int = 0
    first: BadRow | None = None

    def add(self, lines: np.ndarray, describe: Callable[[int], str]) -> None:
        """Count rows at ``lines``; ``describe(i)`` tells what is wrong with the i-th one."""
        if len(lines) == 0:
            return
        self.count += len(lines)
        i = int(np.argmin(lines))
        if self.first is None or int(lines[i]) < self.first.line:
            self.first = BadRow(int(lines[i]), describe(i))

    def settle(self, path: str, spec: ReadSpec) -> None:
        """Fail on the earliest bad row, or count them all as skipped."""
        if not self.count:
            return
        if not spec.ignore_errors and self.first is not None:
            raise ExecError(f"{path}, line {self.first.line}: {self.first.problem}", hint=SKIP_HINT)
        spec.skipped(self.count)


def make_batch(columns: Sequence[pa.Array], schema: pa.Schema, num_rows: int) -> pa.RecordBatch:
    """A batch of the given columns; with no columns, a batch of ``num_rows`` empty rows."""
    if not schema.names:
        return pa.RecordBatch.from_struct_array(pa.nulls(num_rows, pa.struct([])))
    return pa.RecordBatch.from_arrays(list(columns), schema=schema)


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
