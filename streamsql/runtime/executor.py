"""What every executor does to one operator instance, and the choice of executor.

An executor moves batches through an instance's chain, keeps its watermark at the minimum
over its inputs that are not idle (Flink's valve), marks it idle, and closes it at the end
of its input. How an instance's output reaches its consumers is the executor's own: the
deterministic driver calls the consumer at once (depth-first, one thread), the threaded
executor puts a message into the consumer's input channel. The ``_send_*`` methods are
that one difference; everything else here is shared.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pyarrow as pa

from streamsql.checkpoint import faults
from streamsql.checkpoint.coordinator import InstancePart
from streamsql.checkpoint.restore import recover_sinks, restore_instances
from streamsql.errors import ExecError, StreamSQLError
from streamsql.runtime.job import Instance, Job, JobResult
from streamsql.runtime.operators.sink import SinkOperator
from streamsql.runtime.timeutil import MAX_WATERMARK

#: An input of an instance: (edge index, producer instance index).
InputKey = tuple[int, int]


class Executor:
    """The per-instance logic every executor shares; subclasses say how to deliver."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.graph = job.graph
        self.out_edges = {t.id: self.graph.outputs(t.id) for t in self.graph.tasks}
        self.edge_index = {e: i for i, e in enumerate(self.graph.edges)}
        self.sources = [i for i in job.all_instances() if i.reader is not None]
        self.stopped = False
        #: A savepoint asked for by ``savepoint()``: None, 'keep' (go on) or 'stop'.
        self.savepoint_requested: str | None = None
        coord = job.coordinator
        self._read_ahead = coord is not None and coord.mode == "AT_MOST_ONCE"

    def run(self) -> JobResult:
        """Run to the end of the input (bounded jobs) and return the job's result."""
        for _ in self.steps():
            pass
        return self.job.result()

    def steps(self) -> Iterator[None]:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a running job to stop soon; sinks publish what they have written."""
        self.stopped = True

    def savepoint(self, *, stop: bool = False) -> None:
        """Ask for a savepoint (a checkpoint kept until deleted) soon, and with ``stop`` to
        stop the job once it is recorded. Without checkpoints: just stop, if asked.
        """
        if self.job.coordinator is None:
            self.stopped = self.stopped or stop
            return
        self.savepoint_requested = "stop" if stop else "keep"

    # -- how output reaches a consumer (the executor's own) ---------------------------------

    def _send_batch(self, target: Instance, key: InputKey, batch: pa.RecordBatch, port: int):
        raise NotImplementedError

    def _send_watermark(self, target: Instance, key: InputKey, watermark: int) -> None:
        raise NotImplementedError

    def _send_idle(self, target: Instance, key: InputKey, idle: bool) -> None:
        raise NotImplementedError

    def _send_end(self, target: Instance, key: InputKey) -> None:
        raise NotImplementedError

    def _consumers(self, inst: Instance) -> Iterator[tuple[InputKey, Instance]]:
        """Every consumer instance of ``inst``, with the input key it knows ``inst`` by."""
        for edge in self.out_edges[inst.task.id]:
            key = (self.edge_index[edge], inst.index)
            for target in self.job.instances[edge.target]:
                yield key, target

    # -- sources -----------------------------------------------------------------------------

    def _open(self) -> None:
        # The job's time (rows/s) counts from here: planning and opening the checkpoint
        # store, once per run, come before.
        self.job.start()
        self._prepare_checkpoints()
        if self.job.late_rows is not None:
            self.job.late_rows.open()
        for inst in self.job.all_instances():
            inst.chain.open(inst.chain.contexts[0])
            if inst.reader is not None:
                inst.reader.open()
        self._restore()

    def _source_batch(self, src: Instance, batch: pa.RecordBatch) -> None:
        if self._read_ahead:
            self.job.coordinator.read_ahead(src)  # type: ignore[union-attr]
        self._deliver(src, batch, 0)
        assert src.scan is not None
        if src.scan.watermark > src.watermark:
            self._advance(src, src.scan.watermark)

    @staticmethod
    def _quiet(src: Instance) -> float:
        """Seconds since the source last delivered rows (none on processing time: its
        watermark is the clock, which never stands still).
        """
        if src.scan is not None and src.scan.proctime is not None:
            return 0.0
        return time.monotonic() - src.last_active

    def _source_hint(self, src: Instance) -> None:
        """A watermark the source vouches for itself (e.g. a scripted stream's), or the
        clock's when the scan runs on processing time: it moves on every round.
        """
        assert src.reader is not None and src.scan is not None
        hint = src.reader.watermark()
        if src.scan.proctime is not None:
            hint = src.scan.clock_watermark()
        elif src.scan.rowtime is None:
            hint = None
        if hint is not None and hint > src.watermark:
            if src.idle:
                self._set_idle(src, False)
            self._advance(src, hint)

    def _finish_source(self, src: Instance) -> None:
        assert src.reader is not None
        if self.job.coordinator is not None:
            src.final_position = src.reader.position()
        src.reader.close()
        self._advance(src, MAX_WATERMARK)
        self._close(src)

    def _allowed_latency(self) -> float:
        settings = self.job.settings
        return settings["table.exec.mini-batch.allow-latency"] / 1000.0

    # -- moving batches and watermarks -------------------------------------------------------

    def _deliver(self, inst: Instance, batch: pa.RecordBatch, port: int) -> None:
        if inst.closed:
            return  # it ended early (a LIMIT passed its rows): what still comes is dropped
        faults.reached("batch")
        try:
            out = inst.chain.process_batch(batch, port)
        except StreamSQLError:
            raise
        except Exception as e:  # an operator bug or a data error without a message of its own
            raise ExecError(f"{inst.label} failed: {type(e).__name__}: {e}") from e
        self._emit(inst, out)
        if inst.chain.done:
            self._end_early(inst)

    def _end_early(self, inst: Instance) -> None:
        """``inst``'s chain needs no more input (a LIMIT passed its rows): the instance
        ends as if its input had ended, and every source that now feeds no instance still
        running ends as at the end of a bounded input. The job then ends normally: what is
        downstream closes, fires and publishes as usual. Called on ``inst``'s own thread.
        """
        if inst.closed:
            return
        if inst.reader is not None:
            inst.ending = True  # the source's loop ends it after this batch
        else:
            # Messages held for a checkpoint's alignment still count (their end of input).
            inst.replay.extend(inst.held)
            inst.held.clear()
            inst.aligning = 0
            inst.barriered.clear()
            self._advance(inst, MAX_WATERMARK)
            self._close(inst)
        memo: dict[int, bool] = {}
        for src in self.sources:
            if not src.closed and not self._wanted(src, memo):
                src.ending = True

    def _wanted(self, inst: Instance, memo: dict[int, bool]) -> bool:
        """Whether ``inst`` still feeds an instance that runs (or is a sink that runs)."""
        if id(inst) not in memo:
            memo[id(inst)] = False  # the graph has no cycles; this only ends the recursion
            consumers = [target for _, target in self._consumers(inst)]
            memo[id(inst)] = not inst.closed and (
                not consumers or any(self._wanted(t, memo) for t in consumers)
            )
        return memo[id(inst)]

    def _emit(self, inst: Instance, batches: list[pa.RecordBatch]) -> None:
        if not batches:
            return
        for edge in self.out_edges[inst.task.id]:
            router = self.job.routers[edge]
            targets = self.job.instances[edge.target]
            key = (self.edge_index[edge], inst.index)
            for batch in batches:
                for target, part in router.route(batch, inst.index):
                    self._send_batch(targets[target], key, part, edge.input_index)

    def _advance(self, inst: Instance, watermark: int) -> None:
        if watermark <= inst.watermark or inst.closed:
            return
        inst.watermark = watermark
        self._emit(inst, inst.chain.on_watermark(watermark))
        out = inst.chain.output_watermark(watermark)
        for key, target in self._consumers(inst):
            self._send_watermark(target, key, out)

    def _input_watermark(self, inst: Instance, key: InputKey, watermark: int) -> None:
        if watermark <= inst.input_watermarks[key]:
            return
        inst.input_watermarks[key] = watermark
        self._refresh(inst)

    def _refresh(self, inst: Instance) -> None:
        """Move the instance's watermark to the minimum over its inputs that are not idle.
        When every input still open is idle, the instance is idle too: its watermark moves
        to the largest over its inputs (as Flink's valve does: the quiet inputs have
        nothing older to send), and its consumers leave it out of their minimum in turn.
        """
        if inst.closed:
            return  # it ended early: its inputs only drain
        live = [w for k, w in inst.input_watermarks.items() if k not in inst.idle_inputs]
        if inst.idle_inputs and all(w >= MAX_WATERMARK for w in live):
            quiet = [inst.input_watermarks[k] for k in inst.idle_inputs]
            self._advance(inst, max(quiet))
            if not inst.idle:
                self._set_idle(inst, True)
            return
        if inst.idle:
            self._set_idle(inst, False)
        self._advance(inst, min(live))

    def _set_idle(self, inst: Instance, idle: bool) -> None:
        """Mark an instance idle (or active again) on every consumer's input edge."""
        inst.idle = idle
        for key, target in self._consumers(inst):
            self._send_idle(target, key, idle)

    def _input_idle(self, inst: Instance, key: InputKey, idle: bool) -> None:
        """An input of ``inst`` went idle (or came back)."""
        if idle:
            inst.idle_inputs.add(key)
        else:
            inst.idle_inputs.discard(key)
        self._refresh(inst)

    def _end_input(self, inst: Instance, key: InputKey) -> None:
        inst.idle_inputs.discard(key)  # an ended input counts again: at +inf
        self._input_watermark(inst, key, MAX_WATERMARK)
        inst.open_inputs.discard(key)
        if not inst.open_inputs:
            self._close(inst)

    def _close(self, inst: Instance) -> None:
        if inst.closed:
            return
        inst.closed = True
        self._emit(inst, inst.chain.close())
        coord = self.job.coordinator
        if coord is not None:
            # Exactly-once sinks published nothing on close: what they wrote last is
            # committed with the next checkpoint (at the latest the job's final one).
            for uid, op in coord.sinks.get(id(inst), []):
                if op.transactional:
                    coord.sink_closed(uid, inst.index, op.sink.pre_commit(coord.next_id))
            coord.instance_closed(inst, inst.final_position)
        for key, target in self._consumers(inst):
            self._send_end(target, key)

    # -- checkpoints -----------------------------------------------------------------------------

    def _prepare_checkpoints(self) -> None:
        """Before anything opens: tell operators how sinks commit, refuse operators that
        cannot be checkpointed, and repair the sinks of a restored job.
        """
        job, coord = self.job, self.job.coordinator
        if coord is None and job.restore_from is None:
            return
        for inst in job.all_instances():
            for node, op, ctx in zip(
                inst.task.nodes, inst.chain.ops, inst.chain.contexts, strict=True
            ):
                ctx.job_id = job.job_id
                ctx.exactly_once = coord is not None and coord.exactly_once
                if coord is not None and not op.checkpointable:
                    raise ExecError(
                        f"{node.name} cannot be checkpointed yet, so this job cannot run with "
                        "checkpoints",
                        hint="run it without a state directory (no checkpoints)",
                    )
        if coord is not None:
            coord.attach(job.all_instances())
        if job.restore_from is not None and job.restore_state:
            recover_sinks(job.graph, job.restore_from, job.operator_ids, job.job_id)
        elif coord is not None and coord.exactly_once:
            # A first run, or one killed before its first checkpoint: what it left behind
            # (never published) goes.
            recover_sinks(job.graph, None, job.operator_ids, job.job_id)

    def _restore(self) -> None:
        """After everything opened: state, watermarks and positions from the checkpoint."""
        job = self.job
        if job.restore_from is None:
            return
        began = time.perf_counter()
        restore_instances(
            job.all_instances(),
            job.restore_from,
            job.operator_ids,
            job.settings.max_parallelism,
            with_state=job.restore_state,
        )
        if job.coordinator is not None:
            stats = job.coordinator.stats
            stats.restored_from = job.restore_from.info.id or None  # 0: read positions
            stats.restored_bytes = job.restore_from.info.state_bytes
            # Reading and verifying the checkpoint, then handing state out.
            stats.restore_ms = job.restore_from.read_ms + (time.perf_counter() - began) * 1000

    def _part(self, inst: Instance, epoch: int) -> InstancePart:
        """``inst``'s part of checkpoint ``epoch``, taken at its barrier: rows held back
        go downstream first, then every operator writes its state and snapshots it.
        """
        self._emit(inst, inst.chain.flush())
        inst.chain.on_barrier(epoch)
        ids = self.job.operator_ids
        operators = [
            (ids[id(node)], op.snapshot(), ctx.watermark)
            for node, op, ctx in zip(
                inst.task.nodes, inst.chain.ops, inst.chain.contexts, strict=True
            )
        ]
        part = InstancePart(
            operators,
            inst.watermark,
            {f"{e}:{p}": w for (e, p), w in inst.input_watermarks.items()},
        )
        if inst.reader is not None and inst.scan is not None:
            part.position = inst.reader.position()
            part.source_watermark = inst.scan.watermark
        for node, op in zip(inst.task.nodes, inst.chain.ops, strict=True):
            if isinstance(op, SinkOperator) and op.transactional:
                part.handles.append((ids[id(node)], op.handle))
        inst.last_epoch = epoch
        return part

    def _rows_read(self) -> int:
        return sum(s.reader.counters.get("rows_read", 0) for s in self.sources if s.reader)

    # -- stopping ------------------------------------------------------------------------------

    def _ended(self) -> None:
        """The run is over: stopped (sinks publish what they hold), or at its end."""
        if self.stopped:
            self._stop()
            return
        if self.job.late_rows is not None:
            self.job.late_rows.close()  # every instance closed: no row can be late now
        if self.job.coordinator is not None:
            self.job.coordinator.finish()

    def _stop(self) -> None:
        """Stopped before the end: publish what sinks hold, without firing open windows
        (with exactly-once checkpoints sinks publish nothing more: a restart goes on from
        the last checkpoint, or the savepoint taken on the way out).
        """
        if self.job.coordinator is not None:
            self.job.coordinator.abandon()
        for inst in self.job.all_instances():
            if inst.reader is not None:
                inst.reader.close()
            if not inst.closed:
                inst.closed = True
                inst.chain.stop()
        if self.job.late_rows is not None:
            self.job.late_rows.close()

    def _abort(self) -> None:
        """Failed: release the sources; sinks publish nothing more (pending files stay
        hidden), so a failed job never makes partial output visible.
        """
        if self.job.coordinator is not None:
            self.job.coordinator.abandon()
        for inst in self.job.all_instances():
            if inst.reader is not None:
                # The original error matters more than one from closing.
                with contextlib.suppress(Exception):
                    inst.reader.close()
            inst.closed = True

    def _release(self) -> None:
        for inst in self.job.all_instances():
            for m in inst.metrics:
                m.watermark = inst.watermark
        # State sizes are best-effort: after a failure the state may already be gone.
        with contextlib.suppress(Exception):
            for inst in self.job.all_instances():
                for op, ctx in zip(inst.chain.ops, inst.chain.contexts, strict=True):
                    ctx.metrics.extra.update(op.describe_state())


def create_executor(job: Job) -> Executor:
    """The executor 'execution.runtime' names for ``job``: 'threads' runs every operator
    instance on a thread of its own, 'deterministic' runs them all on the caller's.
    """
    from streamsql.runtime.driver import Driver
    from streamsql.runtime.threaded import ThreadedDriver

    if job.settings["execution.runtime"] == "threads":
        return ThreadedDriver(job)
    return Driver(job)
