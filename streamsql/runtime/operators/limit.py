"""LIMIT / OFFSET: pass the first rows, then say that no more input is needed.

It runs as one instance (behind a singleton exchange). Over an append-only input it slices
each batch against the count of rows seen so far; once it has passed its rows it is
``done``, and the executor ends its instance as if the input had ended and stops the
sources that fed only it, so that a LIMIT over an unbounded source ends the job normally.

Over an updating input (bounded: the binder refuses the rest) the rows to limit are the
final result's: the changes are kept, folded into the rows they leave in place whenever the
changes outnumber those rows, and the first rows of the final result are emitted as inserts
at the end of the input.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from streamsql.changelog import apply_changes
from streamsql.plan.limit import Limit
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.snapshot import OperatorSnapshot

#: Changes kept before they are folded into rows, at the least (final mode).
FOLD_ROWS = 65_536


class LimitOperator(Operator):
    def __init__(self, node: Limit) -> None:
        self.offset = node.offset
        #: Where the rows to pass end, counted from the first input row (None: no end).
        self.end = None if node.fetch is None else node.offset + node.fetch
        self.final = node.final
        self.schema = node.schema
        self.seen = 0  # input rows taken so far (append mode)
        self.rows = self.schema.empty_table()  # final mode: the rows the changes left so far
        self.changes: list[pa.RecordBatch] = []  # final mode: changes not folded in yet
        self.pending = 0  # rows in ``changes``

    @property
    def done(self) -> bool:
        return not self.final and self.end is not None and self.seen >= self.end

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> list[pa.RecordBatch]:
        if self.final:
            self.changes.append(batch)
            self.pending += batch.num_rows
            if self.pending >= max(FOLD_ROWS, self.rows.num_rows):
                self._fold()
            return []
        if self.done:
            return []
        n = batch.num_rows
        start = min(max(self.offset - self.seen, 0), n)
        stop = n if self.end is None else min(self.end - self.seen, n)
        self.seen += n
        return [batch.slice(start, stop - start)] if stop > start else []

    def close(self) -> list[pa.RecordBatch]:
        if not self.final:
            return []
        self._fold()
        length = None if self.end is None else self.end - self.offset
        return self.rows.slice(self.offset, length).to_batches()

    def _fold(self) -> None:
        """Apply the kept changes to the rows: what is left stands for all of them."""
        if not self.changes:
            return
        changes = pa.Table.from_batches(self.changes)
        self.rows = apply_changes(self.rows, changes).cast(self.schema)
        self.changes, self.pending = [], 0

    def snapshot(self) -> OperatorSnapshot:
        """The count (one instance: nothing to split), and in final mode the rows."""
        self._fold()
        tables = {"rows": self.rows} if self.final else {}
        return OperatorSnapshot(tables, values={"seen": self.seen})

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        self.seen = int(snapshot.values.get("seen", 0))
        rows = snapshot.table("rows", self.schema)
        if rows is not None:
            self.rows = rows

    def describe_state(self) -> dict[str, int]:
        return {"rows": self.rows.num_rows + self.pending} if self.final else {}
