"""The checkpoint coordinator of one job: when to take a checkpoint, collecting every
instance's part of it, recording it, and committing the sinks.

An executor asks ``due()`` and calls ``trigger()``; the sources then inject barrier n into
their outputs. Every instance acknowledges epoch n once it has aligned the barrier on all
its inputs and taken its snapshot (``ack``); an instance that has closed meanwhile (its
input ended) owes nothing. When the last one has acknowledged, a writer thread records the
checkpoint in the store in one transaction and then the transactional sinks commit what
they pre-committed for it (two-phase commit: a crash between the two is repaired on
restore, which commits the handles the checkpoint holds). The job goes on meanwhile; the
next checkpoint starts once this one is recorded.

The coordinator is called from the executor's threads: everything here holds ``lock``.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from streamsql.checkpoint import faults
from streamsql.checkpoint.store import CheckpointStore
from streamsql.config import checkpoint_interval
from streamsql.errors import ExecError, StreamSQLError
from streamsql.runtime.snapshot import OperatorSnapshot

if TYPE_CHECKING:
    from streamsql.runtime.job import Instance
    from streamsql.runtime.operators.sink import SinkOperator

#: The interval when a state directory is given and 'execution.checkpointing.interval' is not.
DEFAULT_INTERVAL_MS = 10_000


@dataclass
class InstancePart:
    """One instance's share of a checkpoint."""

    #: Per operator of the chain: (operator id, snapshot or None, its input watermark).
    operators: list[tuple[str, OperatorSnapshot | None, int]]
    watermark: int
    inputs: dict[str, int] = field(default_factory=dict)  # "edge:producer" -> watermark
    position: dict[str, Any] | None = None  # a source instance's
    source_watermark: int | None = None
    #: Per sink operator: (operator id, pre-commit handle).
    handles: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class CheckpointStats:
    """What the job result and the CLI report."""

    completed: int = 0
    last_id: int | None = None
    last_duration_ms: float = 0.0
    last_bytes: int = 0
    total_duration_ms: float = 0.0
    restored_from: int | None = None
    restored_bytes: int = 0
    restore_ms: float = 0.0

    def summary(self) -> str:
        parts = []
        if self.restored_from is not None:
            parts.append(
                f"restored from checkpoint {self.restored_from} ({_size(self.restored_bytes)}) "
                f"in {self.restore_ms:.0f} ms"
            )
        if self.completed:
            parts.append(
                f"{self.completed} checkpoint{'s' if self.completed != 1 else ''} completed "
                f"(last: {self.last_id}, {self.last_duration_ms:.0f} ms, "
                f"{_size(self.last_bytes)})"
            )
        return "; ".join(parts)


@dataclass
class _Pending:
    id: int
    kind: str
    began: float
    waiting: set[int]  # id() of instances that still owe their part
    parts: dict[int, InstancePart] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


class Coordinator:
    """Triggers, collects and completes the checkpoints of one job."""

    def __init__(
        self,
        job_key: str,
        store: CheckpointStore,
        fingerprint: str,
        ids: dict[int, str],
        settings: Any,
    ) -> None:
        self.job_key = job_key
        self.store = store
        self.fingerprint = fingerprint
        self.ids = ids  # id(plan node) -> operator id
        ms, rows = checkpoint_interval(settings["execution.checkpointing.interval"])
        if ms is None and rows is None:
            ms = DEFAULT_INTERVAL_MS
        self.interval_ms, self.interval_rows = ms, rows
        self.mode: str = settings["execution.checkpointing.mode"]
        self.retain: int = settings["state.checkpoints.num-retained"]
        self.lock = threading.RLock()
        self.stats = CheckpointStats()
        self.instances: list[Instance] = []
        self.sinks: dict[int, list[tuple[str, SinkOperator]]] = {}  # id(instance) -> sinks
        self.closed: dict[int, Instance] = {}
        #: Handles of sinks that closed (end of their input): part of every later checkpoint.
        self.final_handles: dict[tuple[str, int], Any] = {}
        self.pending: dict[int, _Pending] = {}
        self.current = 0  # the latest epoch triggered
        self.next_id = store.next_id()
        self._last_time = time.monotonic()
        self._last_rows = 0
        #: Completed checkpoints are recorded (and sinks committed) on a thread of their own.
        self._queue: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self.failure: BaseException | None = None

    @property
    def exactly_once(self) -> bool:
        return self.mode == "EXACTLY_ONCE"

    @property
    def aligned(self) -> bool:
        """Whether instances hold back inputs that delivered the barrier until all have."""
        return self.mode == "EXACTLY_ONCE"

    def attach(self, instances: list[Instance]) -> None:
        from streamsql.runtime.operators.sink import SinkOperator

        self.instances = list(instances)
        for inst in instances:
            found = [
                (self.ids[id(node)], op)
                for node, op in zip(inst.task.nodes, inst.chain.ops, strict=True)
                if isinstance(op, SinkOperator)
            ]
            if found:
                self.sinks[id(inst)] = found

    # -- triggering ------------------------------------------------------------------------

    def due(self, rows_read: int) -> bool:
        """Whether the interval (time or rows read by all sources) has passed."""
        if self.mode == "AT_MOST_ONCE":
            return False
        with self.lock:
            if self.busy():
                return False  # one at a time
            if self.interval_rows and rows_read - self._last_rows >= self.interval_rows:
                return True
            return bool(
                self.interval_ms and (time.monotonic() - self._last_time) * 1000 >= self.interval_ms
            )

    def busy(self) -> bool:
        """Whether a checkpoint is in flight (barriers of two never overlap)."""
        with self.lock:
            return any(not p.done.is_set() for p in self.pending.values())

    def trigger_if_due(self, rows_read: int) -> int | None:
        """Start a checkpoint if one is due (atomically: two callers start one)."""
        with self.lock:
            return self.trigger(rows_read) if self.due(rows_read) else None

    def trigger(self, rows_read: int, kind: str = "checkpoint") -> int:
        """Start checkpoint n (the sources inject its barrier next); returns n."""
        with self.lock:
            n = self.next_id
            self.next_id += 1
            waiting = {id(i) for i in self.instances if id(i) not in self.closed}
            self.pending[n] = _Pending(n, kind, time.perf_counter(), waiting)
            self.current = n
            self._last_time = time.monotonic()
            self._last_rows = rows_read
            if not waiting:
                self._complete(self.pending[n])
            return n

    def wait(self, n: int, timeout: float | None = None) -> bool:
        """Wait until checkpoint n is recorded (or abandoned); whether it was."""
        pending = self.pending.get(n)
        return pending is None or pending.done.wait(timeout)

    # -- acknowledgements ----------------------------------------------------------------------

    def ack(self, n: int, inst: Instance, part: InstancePart) -> None:
        with self.lock:
            pending = self.pending.get(n)
            if pending is None or id(inst) not in pending.waiting:
                return
            pending.parts[id(inst)] = part
            pending.waiting.discard(id(inst))
            if not pending.waiting:
                self._complete(pending)

    def instance_closed(self, inst: Instance, position: dict[str, Any] | None = None) -> None:
        """``inst`` closed (its input ended): it owes no part of open checkpoints. A
        source's last position is remembered for the checkpoints still to come.
        """
        with self.lock:
            self.closed[id(inst)] = inst
            inst.final_position = position
            for pending in list(self.pending.values()):
                if id(inst) in pending.waiting:
                    pending.waiting.discard(id(inst))
                    if not pending.waiting:
                        self._complete(pending)

    def read_ahead(self, src: Instance) -> None:
        """At most once: record where ``src`` has read to before its rows are processed, so
        that a restart goes on after them (and never repeats their output).
        """
        assert src.reader is not None
        with self.lock:
            uid = self.ids[id(src.task.head)]
            position = src.reader.position()
            self.store.save_position(self.job_key, uid, src.index, src.task.parallelism, position)

    def sink_closed(self, sink_id: str, instance: int, handle: Any) -> None:
        with self.lock:
            self.final_handles[(sink_id, instance)] = handle

    def finish(self) -> None:
        """Every instance closed at the end of the input: the final checkpoint records the
        sources at their end and commits what the sinks wrote last.
        """
        if self.mode == "AT_MOST_ONCE":
            return
        n = self.trigger(self._last_rows, "final")
        self.wait(n)
        self.close()
        self.check()

    def abandon(self) -> None:
        """The job stopped or failed: checkpoints whose parts are all in are still
        recorded; those waiting for parts never complete.
        """
        self.close()
        with self.lock:
            for pending in self.pending.values():
                pending.done.set()
            self.pending.clear()

    # -- completion ------------------------------------------------------------------------------

    def _complete(self, pending: _Pending) -> None:
        """Every part is in: record the checkpoint and commit the sinks on the writer
        thread, while the job goes on (the parts are Arrow tables and JSON: nothing the
        operators change later). The next checkpoint starts only once this one is done.
        """
        work = self._manifest(pending)
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="streamsql checkpoint writer", daemon=True
            )
            self._writer.start()
        self._queue.put((pending, work))

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            pending, (manifest, tables, handles) = item
            try:
                self._record(pending, manifest, tables, handles)
            except BaseException as e:  # the executor raises it in the job's thread
                self.failure = e
            finally:
                with self.lock:
                    self.pending.pop(pending.id, None)
                    pending.done.set()

    def _record(self, pending: _Pending, manifest, tables, handles) -> None:
        faults.reached("checkpoint")
        size = self.store.write(
            pending.id,
            pending.kind,
            self.job_key,
            self.fingerprint,
            self.mode,
            manifest,
            tables,
            (time.perf_counter() - pending.began) * 1000,
            self.retain,
        )
        faults.reached("commit")
        for sink, handle in handles:
            sink.sink.commit(pending.id, handle)
            faults.reached("sink-commit")
        duration = (time.perf_counter() - pending.began) * 1000
        with self.lock:
            s = self.stats
            s.completed += 1
            s.last_id, s.last_duration_ms, s.last_bytes = pending.id, duration, size
            s.total_duration_ms += duration

    def close(self) -> None:
        """Wait for checkpoints being recorded, and end the writer thread."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None

    def check(self) -> None:
        """Raise the error recording a checkpoint ran into, if any (the job fails)."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            if isinstance(failure, StreamSQLError):
                raise failure
            raise ExecError(
                f"recording a checkpoint failed: {type(failure).__name__}: {failure}"
            ) from failure

    def _manifest(self, pending: _Pending):
        operators: dict[str, dict[str, Any]] = {}
        tasks: dict[str, dict[str, Any]] = {}
        sources: dict[str, dict[str, Any]] = {}
        sinks: dict[str, dict[str, Any]] = {}
        tables: dict[tuple[str, int, str], pa.Table] = {}
        handles: list[tuple[SinkOperator, Any]] = []
        for inst in self.instances:
            head = self.ids[id(inst.task.head)]
            p, i = inst.task.parallelism, str(inst.index)
            task = tasks.setdefault(head, {"parallelism": p, "instances": {}})
            part = pending.parts.get(id(inst))
            for node in inst.task.nodes:  # every operator is listed, closed ones too
                operators.setdefault(self.ids[id(node)], {"parallelism": p, "instances": {}})
            if inst.reader is not None:
                src = sources.setdefault(
                    head,
                    {
                        "table": inst.task.head.table.name,
                        "parallelism": p,
                        "positions": {},
                        "watermarks": {},
                    },  # type: ignore[attr-defined]
                )
                if part is not None:
                    src["positions"][i] = part.position
                    src["watermarks"][i] = part.source_watermark
                else:
                    src["positions"][i] = getattr(inst, "final_position", None)
            for sink_id, op in self.sinks.get(id(inst), []):
                entry = sinks.setdefault(sink_id, {"table": op.table.name, "handles": {}})
                handle = None
                if part is not None:
                    handle = dict(part.handles).get(sink_id)
                else:
                    handle = self.final_handles.get((sink_id, inst.index))
                if handle is not None:
                    entry["handles"][i] = handle
                    handles.append((op, handle))
            if part is None:
                continue  # closed: nothing left to restore
            task["instances"][i] = {"watermark": part.watermark, "inputs": part.inputs}
            for uid, snap, wm in part.operators:
                entry = operators[uid]["instances"].setdefault(i, {})
                entry["watermark"] = wm
                if snap is None:
                    continue
                entry["values"] = snap.values
                entry["keys"] = {k: list(v) for k, v in snap.keys.items()}
                entry["tables"] = sorted(snap.tables)
                for name, table in snap.tables.items():
                    tables[(uid, inst.index, name)] = table
        manifest = {
            "job": self.job_key,
            "mode": self.mode,
            "operators": operators,
            "tasks": tasks,
            "sources": sources,
            "sinks": sinks,
        }
        return manifest, tables, handles


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
