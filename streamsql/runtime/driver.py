"""The deterministic driver: runs a job on one thread, batch by batch, in a fixed order.

It reads one batch from each source in turn and pushes it depth-first through the graph;
after each batch the source's watermark moves on. An instance's watermark is the minimum
over all its inputs (every upstream instance on every input edge), and rows an operator
fires on a watermark reach downstream before the watermark itself. At the end of a bounded
input the watermark becomes +inf, every window fires, and the instances close in order.
This driver is the reference: every other executor must give the same results.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pyarrow as pa

from streamsql.errors import ExecError, StreamSQLError
from streamsql.runtime.job import Instance, Job, JobResult
from streamsql.runtime.timeutil import MAX_WATERMARK

#: How long to wait when every unbounded source had nothing to deliver.
IDLE_SLEEP_S = 0.005


class Driver:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.graph = job.graph
        self.out_edges = {t.id: self.graph.outputs(t.id) for t in self.graph.tasks}
        self.edge_index = {e: i for i, e in enumerate(self.graph.edges)}
        self.sources = [i for i in job.all_instances() if i.reader is not None]
        self.stopped = False

    # -- running ---------------------------------------------------------------------------

    def run(self) -> JobResult:
        """Run to the end of the input (bounded jobs) and return the job's result."""
        for _ in self.steps():
            pass
        return self.job.result()

    def steps(self) -> Iterator[None]:
        """Run one round (a batch from each source) per iteration. Closing the iterator
        stops the job cleanly: sinks publish what they have written.
        """
        self._open()
        latency = self._allowed_latency()
        idle_after = self.job.settings["table.exec.source.idle-timeout"] / 1000.0
        last_flush = time.monotonic()
        for src in self.sources:
            src.last_active = last_flush
        try:
            active = list(self.sources)
            full = self.job.settings.batch_size
            while active and not self.stopped:
                progressed = backlog = False
                for src in list(active):
                    batch = self._read(src)
                    if batch is None:
                        active.remove(src)
                        self._finish_source(src)
                        progressed = True
                        continue
                    if batch.num_rows:
                        src.last_active = time.monotonic()
                        if src.idle:
                            self._set_idle(src, False)
                        self._source_batch(src, batch)
                        progressed = True
                        backlog = backlog or batch.num_rows >= full
                    elif idle_after and not src.idle and self._quiet(src) >= idle_after:
                        self._set_idle(src, True)
                    self._source_hint(src)
                now = time.monotonic()
                # Held-back rows wait only while a source has a backlog (a full batch came),
                # and never longer than the allowed latency.
                if not backlog or now - last_flush >= latency:
                    self._flush_all()
                    last_flush = now
                if not progressed:
                    time.sleep(IDLE_SLEEP_S)
                yield
            if self.stopped:
                self._stop()
            elif self.job.late_rows is not None:
                self.job.late_rows.close()  # every instance closed: no row can be late now
        except (GeneratorExit, KeyboardInterrupt):
            self._stop()
            raise
        except BaseException:
            self._abort()
            raise
        finally:
            self.job.finished = time.perf_counter()
            self._release()

    def stop(self) -> None:
        """Ask a running job to stop after the current round."""
        self.stopped = True

    # -- sources -----------------------------------------------------------------------------

    def _open(self) -> None:
        if self.job.late_rows is not None:
            self.job.late_rows.open()
        for inst in self.job.all_instances():
            inst.chain.open(inst.chain.contexts[0])
            if inst.reader is not None:
                inst.reader.open()

    def _read(self, src: Instance) -> pa.RecordBatch | None:
        assert src.reader is not None
        return src.reader.read()

    def _source_batch(self, src: Instance, batch: pa.RecordBatch) -> None:
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
        src.reader.close()
        self._advance(src, MAX_WATERMARK)
        self._close(src)

    def _allowed_latency(self) -> float:
        settings = self.job.settings
        return settings["table.exec.mini-batch.allow-latency"] / 1000.0

    def _flush_all(self) -> None:
        """Ask every instance, upstream first, for what it holds back."""
        for inst in self.job.all_instances():
            if not inst.closed:
                self._emit(inst, inst.chain.flush())

    # -- moving batches and watermarks -------------------------------------------------------

    def _deliver(self, inst: Instance, batch: pa.RecordBatch, port: int) -> None:
        try:
            out = inst.chain.process_batch(batch, port)
        except StreamSQLError:
            raise
        except Exception as e:  # an operator bug or a data error without a message of its own
            raise ExecError(f"{inst.label} failed: {type(e).__name__}: {e}") from e
        self._emit(inst, out)

    def _emit(self, inst: Instance, batches: list[pa.RecordBatch]) -> None:
        if not batches:
            return
        for edge in self.out_edges[inst.task.id]:
            router = self.job.routers[edge]
            targets = self.job.instances[edge.target]
            for batch in batches:
                for target, part in router.route(batch, inst.index):
                    self._deliver(targets[target], part, edge.input_index)

    def _advance(self, inst: Instance, watermark: int) -> None:
        if watermark <= inst.watermark:
            return
        inst.watermark = watermark
        self._emit(inst, inst.chain.on_watermark(watermark))
        out = inst.chain.output_watermark(watermark)
        for edge in self.out_edges[inst.task.id]:
            key = (self.edge_index[edge], inst.index)
            for target in self.job.instances[edge.target]:
                self._input_watermark(target, key, out)

    def _input_watermark(self, inst: Instance, key: tuple[int, int], watermark: int) -> None:
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
        for edge in self.out_edges[inst.task.id]:
            key = (self.edge_index[edge], inst.index)
            for target in self.job.instances[edge.target]:
                if idle:
                    target.idle_inputs.add(key)
                else:
                    target.idle_inputs.discard(key)
                self._refresh(target)

    def _end_input(self, inst: Instance, key: tuple[int, int]) -> None:
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
        for edge in self.out_edges[inst.task.id]:
            key = (self.edge_index[edge], inst.index)
            for target in self.job.instances[edge.target]:
                self._end_input(target, key)

    # -- stopping ------------------------------------------------------------------------------

    def _stop(self) -> None:
        """Stopped before the end: publish what sinks hold, without firing open windows."""
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
