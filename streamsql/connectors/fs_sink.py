"""The filesystem sink: rolling part files that become visible only when complete.

A part file is written as ``.part-<job>-<instance>-<n>.<ext>.inprogress`` (hidden: readers
skip names starting with '.') and renamed to ``part-<job>-<instance>-<n>.<ext>`` when it
rolls (size or age), on flush() (checkpoints) and on close(); a partly written file is never
visible. Numbering continues after the highest part already in the directory.

With exactly-once checkpoints (``SinkContext.exactly_once``) the sink takes part in the
two-phase commit instead: ``<job>`` is the job id (stable across restarts), a finished file
(rolled, or closed by ``pre_commit``) is renamed to the still hidden
``.part-<job>-<instance>-<n>.<ext>.pending``, and only ``commit`` renames pending files to
their visible names. Rows written after the last checkpoint are thus never visible before
the checkpoint that covers them completes; after a crash ``recover_sink`` publishes the
files the restored checkpoint names and deletes the job's other hidden files.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streamsql import duck
from streamsql.connectors.base import Sink
from streamsql.connectors.formats.writers import FileWriter
from streamsql.errors import ExecError

WriterFactory = Callable[[str, duck.Connection], FileWriter]

INPROGRESS, PENDING = ".inprogress", ".pending"


def safe_job(job: str) -> str:
    """The job name or id as it appears in file names.

    >>> safe_job("daily report/v2")
    'daily_report_v2'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", job)


def pending_name(name: str) -> str:
    """The hidden name a finished part file waits under until its checkpoint commits."""
    return f".{name}{PENDING}"


class FileSink(Sink):
    """Writes one sink instance's rows into rolling part files of a directory."""

    # The guarantee with exactly-once checkpoints. Without them files are published on
    # flush(), not with the checkpoint's commit: a restart after a flush and before the
    # checkpoint completes writes rows again (at-least-once).
    guarantee = "exactly-once (files published at checkpoints)"
    transactional = True

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
        exactly_once: bool = False,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.schema = schema
        self.ext = ext
        self.make_writer = make_writer
        self.prefix = f"part-{safe_job(job)}-{instance}-"
        self.max_bytes, self.max_age_ms = max_bytes, max_age_ms
        self.exactly_once = exactly_once
        self.writer: FileWriter | None = None
        self._inprogress = ""
        self.part = 0
        self.opened_at = 0.0
        self.published: list[str] = []  # files made visible so far, in order
        self._opened = False
        self._con: duck.Connection | None = None
        # Exactly-once: finished files not yet pre-committed, and the files each
        # pre-committed epoch added (until a commit covers it). ``commit`` runs on another
        # thread than ``write``; the lock guards these and ``published``.
        self._lock = threading.Lock()
        self._finished: list[str] = []
        self._epochs: dict[int, list[str]] = {}

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
        if not self.exactly_once:  # exactly-once: only a commit publishes
            self._roll()

    def close(self) -> None:
        self._roll()  # exactly-once: the last file waits for pre_commit/commit
        if self._con is not None:
            self._con.close()
            self._con = None

    def pre_commit(self, epoch: int) -> Any:
        """Finish the open file; the handle names every file not yet known committed.

        Cumulative: if the commit of an earlier epoch never comes (the process died just
        after the checkpoint was recorded), this epoch's commit or the recovery publishes
        its files too.
        """
        if not self.exactly_once:
            return None
        self._roll()
        with self._lock:
            self._epochs.setdefault(epoch, []).extend(self._finished)
            self._finished = []
            files = [name for e in sorted(self._epochs) for name in self._epochs[e]]
        return {"files": files}

    def commit(self, epoch: int, handle: Any) -> None:
        if not self.exactly_once or not handle:
            return
        done = publish(self.directory, handle.get("files", ()))
        with self._lock:
            self.published.extend(done)
            for e in [e for e in self._epochs if e <= epoch]:
                del self._epochs[e]

    @property
    def con(self) -> duck.Connection:
        if self._con is None:
            self._con = duck.connect(threads=1)
        return self._con

    def _start(self) -> None:
        if not self._opened:
            self.open()
        self._inprogress = os.path.join(self.directory, f".{self._name()}{INPROGRESS}")
        self.writer = self.make_writer(self._inprogress, self.con)
        self.opened_at = time.monotonic()

    def _roll(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        if self.exactly_once:
            _sync(self._inprogress)  # a pre-committed file must survive a machine crash
            os.replace(self._inprogress, os.path.join(self.directory, pending_name(self._name())))
            with self._lock:
                self._finished.append(self._name())
        else:
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


def publish(directory: str, names: Iterable[str]) -> list[str]:
    """Rename the pending files of ``names`` (visible part names) into place; idempotent.

    A name whose pending file is gone was published already (and may since have been taken
    away by a reader): it is skipped. Returns the paths published now.
    """
    done = []
    for name in names:
        if os.sep in name or "/" in name or name.startswith("."):
            raise ExecError(f"checkpoint names an invalid part file {name!r}")
        final = os.path.join(directory, name)
        try:
            os.replace(os.path.join(directory, pending_name(name)), final)
        except FileNotFoundError:
            continue
        done.append(final)
    return done


def recover(directory: str, job: str, handles: Iterable[Any]) -> list[str]:
    """Publish the files the handles name, then delete every other hidden part file of
    ``job`` (pending or in progress) in ``directory``: those hold rows written after the
    checkpoint, which the restarted job writes again. Returns the paths published now.
    """
    if not os.path.isdir(directory):
        return []
    names = [name for h in handles if h for name in h.get("files", ())]
    done = publish(directory, names)
    own = re.compile(
        r"^\.part-"
        + re.escape(safe_job(job))
        + r"-\d+-\d+\.[^/]*("
        + re.escape(INPROGRESS)
        + "|"
        + re.escape(PENDING)
        + ")$"
    )
    for name in os.listdir(directory):
        if own.match(name):
            os.remove(os.path.join(directory, name))
    return done


def _sync(path: str) -> None:
    """Flush a closed file's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
