"""The deterministic driver: runs a job on one thread, batch by batch, in a fixed order.

It reads one batch from each source in turn and pushes it depth-first through the graph;
after each batch the source's watermark moves on. An instance's watermark is the minimum
over all its inputs (every upstream instance on every input edge), and rows an operator
fires on a watermark reach downstream before the watermark itself. At the end of a bounded
input the watermark becomes +inf, every window fires, and the instances close in order.
This driver is the reference: every other executor must give the same results.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyarrow as pa

from streamsql.runtime.executor import Executor, InputKey
from streamsql.runtime.job import Instance

#: How long to wait when every unbounded source had nothing to deliver.
IDLE_SLEEP_S = 0.005


class Driver(Executor):
    """Runs every instance on the caller's thread: a consumer runs as soon as its producer
    hands it something (depth-first), so the run is the same every time.
    """

    def steps(self) -> Iterator[None]:
        """Run one round (a batch from each source) per iteration. Closing the iterator
        stops the job cleanly: sinks publish what they have written.
        """
        self._open()
        for inst in self.job.all_instances():
            if inst.chain.done:  # LIMIT 0, or one restored after it passed its rows
                self._end_early(inst)
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
                    batch = None if src.ending else self._read(src)
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
                self._maybe_checkpoint()
                if not progressed:
                    time.sleep(IDLE_SLEEP_S)
                yield
            self._ended()
        except (GeneratorExit, KeyboardInterrupt):
            self._stop()
            raise
        except BaseException:
            self._abort()
            raise
        finally:
            self.job.finish()
            self._release()

    # -- checkpoints ---------------------------------------------------------------------------

    def _maybe_checkpoint(self) -> None:
        """Between rounds no data is in flight: every instance takes its part of the
        checkpoint at once, upstream first, and the cut is consistent without barriers.
        """
        coord = self.job.coordinator
        if coord is None:
            return
        coord.check()
        asked, self.savepoint_requested = self.savepoint_requested, None
        if asked is None and not coord.due(self._rows_read()):
            return
        epoch = coord.trigger(self._rows_read(), "savepoint" if asked else "checkpoint")
        self._flush_all()
        for inst in self.job.all_instances():
            if not inst.closed:
                coord.ack(epoch, inst, self._part(inst, epoch))
        if asked == "stop":
            self.stopped = True

    # -- sources -----------------------------------------------------------------------------

    def _read(self, src: Instance) -> pa.RecordBatch | None:
        assert src.reader is not None
        return src.reader.read()

    def _flush_all(self) -> None:
        """Ask every instance, upstream first, for what it holds back."""
        for inst in self.job.all_instances():
            if not inst.closed:
                self._emit(inst, inst.chain.flush())

    # -- delivery: at once, depth-first --------------------------------------------------------

    def _send_batch(self, target: Instance, key: InputKey, batch: pa.RecordBatch, port: int):
        self._deliver(target, batch, port)

    def _send_watermark(self, target: Instance, key: InputKey, watermark: int) -> None:
        self._input_watermark(target, key, watermark)

    def _send_idle(self, target: Instance, key: InputKey, idle: bool) -> None:
        self._input_idle(target, key, idle)

    def _send_end(self, target: Instance, key: InputKey) -> None:
        self._end_input(target, key)
