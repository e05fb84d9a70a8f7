"""The threaded executor: every operator instance on a thread of its own, joined by bounded
channels.

A source instance's thread reads a batch, pushes it through its chain and routes the output
into its consumers' channels, then moves its watermark on. Every other instance's thread
takes messages from its one input channel in order (batches, watermarks, idle marks, end of
input from all its input edges) and does with each what the deterministic driver does; the
watermark, idle and end-of-input rules are the same code (``Executor``).

A full channel blocks its producer, so pressure travels upstream to the sources, which then
read no faster than the slowest instance takes; with 'execution.overload.policy' = 'drop' a
source drops (and counts) what a channel blocked for longer than 'execution.overload.timeout'
cannot take. Each instance works with its own DuckDB cursor on the job's database. pyarrow
and DuckDB release the GIL while they work on a batch, so instances run on several cores.

An error in any thread stops the job and is raised to the caller; stopping (``stop()``,
closing ``steps()``, Ctrl-C) wakes every blocked thread, and sinks publish what they hold.
Batches still waiting in channels when a job stops are not processed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pyarrow as pa

from streamsql import duck
from streamsql.errors import ExecError, StreamSQLError
from streamsql.runtime import channel as channels
from streamsql.runtime.channel import Channel, Closed, Message
from streamsql.runtime.driver import IDLE_SLEEP_S
from streamsql.runtime.executor import Executor, InputKey
from streamsql.runtime.job import Instance, Job
from streamsql.state import StateStore

#: How often ``steps()`` yields to its caller while the job runs (results are handed over
#: then, and a stop request is noticed).
STEP_S = 0.02
#: How often a waiting instance wakes to flush (processing-time early firing).
POLL_S = 0.01


class ThreadedDriver(Executor):
    """Runs a job's operator instances concurrently; same interface as ``Driver``."""

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        settings = job.settings
        self.channels: dict[Instance, Channel] = {}
        self.cursors: list[duck.Connection] = []
        for inst in job.all_instances():
            if inst.open_inputs:
                self.channels[inst] = Channel(
                    settings["execution.buffer.max-batches"],
                    settings["execution.buffer.max-bytes"],
                    inst.metrics[0],
                )
            # DuckDB: one cursor per thread; the tables are the job's, as are their names.
            cursor = duck.cursor(job.state.con)
            self.cursors.append(cursor)
            store = StateStore(cursor, prefix=job.state.prefix, tables=job.state.tables)
            for ctx in inst.chain.contexts:
                ctx.state = store
        self.drop = settings["execution.overload.policy"] == "drop"
        self.drop_after = settings["execution.overload.timeout"] / 1000.0
        self.threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        self._halted = threading.Event()  # every thread: stop now
        self._changed = threading.Event()  # a thread ended: the caller looks
        self._lock = threading.Lock()
        self._local = threading.local()
        #: Sources whose last batch was full: more is waiting to be read.
        self.backlogged: set[Instance] = set()
        #: The savepoint after which the job stops (stop-with-savepoint), once recorded.
        self._stop_after: int | None = None
        #: Exactly-once: an input that delivered the barrier is held back until all have
        #: (aligned); at least once it goes on, and a restart may repeat what it sent.
        self._hold = job.coordinator is not None and job.coordinator.aligned

    # -- running ---------------------------------------------------------------------------

    def steps(self) -> Iterator[None]:
        """Start the instances' threads and yield every STEP_S while they run. Closing the
        iterator stops the job cleanly: sinks publish what they have written.
        """
        now = time.monotonic()
        for src in self.sources:
            src.last_active = now
        try:
            self._open()
            for inst in self.job.all_instances():
                if inst.reader is not None:
                    self._start(inst, self._source)
                elif inst.open_inputs:
                    self._start(inst, self._consumer)
            while not self.stopped and any(t.is_alive() for t in self.threads):
                if self.error is not None:
                    break
                self._changed.wait(STEP_S)
                self._changed.clear()
                self._maybe_checkpoint()
                yield
            self._halt()
            if self.error is not None:
                raise self.error
            self._ended()
        except (GeneratorExit, KeyboardInterrupt):
            self._halt()
            self._stop()
            raise
        except BaseException:
            self._halt()
            self._abort()
            raise
        finally:
            self.job.finish()
            self._release()
            for cursor in self.cursors:
                cursor.close()

    def _start(self, inst: Instance, body: Callable[[Instance], None]) -> None:
        thread = threading.Thread(
            target=self._main, args=(inst, body), name=f"streamsql {inst.label}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _main(self, inst: Instance, body: Callable[[Instance], None]) -> None:
        self._local.inst = inst
        try:
            if inst.chain.done:  # LIMIT 0, or one restored after it passed its rows
                self._end_early(inst)
            body(inst)
        except Closed:
            pass  # the job is stopping
        except BaseException as e:
            self._fail(inst, e)
        finally:
            self._changed.set()

    def _fail(self, inst: Instance, e: BaseException) -> None:
        """The first error stops the whole job; the caller raises it."""
        if not isinstance(e, StreamSQLError):
            wrapped = ExecError(f"{inst.label} failed: {type(e).__name__}: {e}")
            wrapped.__cause__ = e
            e = wrapped
        with self._lock:
            if self.error is None:
                self.error = e
        self._wake_all()

    def _wake_all(self) -> None:
        self._halted.set()
        for channel in self.channels.values():
            channel.close()

    def _halt(self) -> None:
        """Stop every thread (blocked ones wake up) and wait for them."""
        self._wake_all()
        for thread in self.threads:
            thread.join()

    # -- a source instance -------------------------------------------------------------------

    def _source(self, src: Instance) -> None:
        assert src.reader is not None
        settings = self.job.settings
        idle_after = settings["table.exec.source.idle-timeout"] / 1000.0
        latency = self._allowed_latency()
        full = settings.batch_size
        last_flush = time.monotonic()
        coord = self.job.coordinator
        while not self._halted.is_set():
            if coord is not None and coord.current > src.last_epoch:
                self._source_barrier(src, coord.current)
            batch = None if src.ending else src.reader.read()
            if batch is None:
                self.backlogged.discard(src)
                self._finish_source(src)
                return
            backlog = batch.num_rows >= full
            if backlog:
                self.backlogged.add(src)
            else:
                self.backlogged.discard(src)
            if batch.num_rows:
                src.last_active = time.monotonic()
                if src.idle:
                    self._set_idle(src, False)
                self._source_batch(src, batch)
                if coord is not None:
                    coord.trigger_if_due(self._rows_read())  # a row interval: soon after
            elif idle_after and not src.idle and self._quiet(src) >= idle_after:
                self._set_idle(src, True)
            self._source_hint(src)
            now = time.monotonic()
            # Held-back rows wait only while the source has a backlog (a full batch came),
            # and never longer than the allowed latency.
            if not backlog or now - last_flush >= latency:
                self._emit(src, src.chain.flush())
                last_flush = now
            if not batch.num_rows:
                time.sleep(IDLE_SLEEP_S)

    # -- any other instance ------------------------------------------------------------------

    def _consumer(self, inst: Instance) -> None:
        channel = self.channels[inst]
        latency = self._allowed_latency()
        last_flush = time.monotonic()
        while not self._halted.is_set():
            msg = inst.replay.popleft() if inst.replay else channel.get(POLL_S)
            if msg is not None:
                self._handle(inst, msg)
            if inst.closed:
                if not inst.open_inputs:
                    return
                continue  # it ended early: take (and drop) what comes until its inputs end
            now = time.monotonic()
            # As the driver: held-back rows wait while more input is coming (in the channel,
            # or a source's last batch was full), and never longer than the allowed latency.
            idle = channel.empty() and not self.backlogged and not inst.replay
            if idle or now - last_flush >= latency:
                self._emit(inst, inst.chain.flush())
                last_flush = now

    def _handle(self, inst: Instance, msg: Message) -> None:
        if inst.closed and msg.kind != channels.END:
            return  # it ended early: only the ends of its inputs still matter
        if inst.aligning and msg.key in inst.barriered and self._hold:
            inst.held.append(msg)  # exactly-once: after its barrier, wait for the others
            return
        match msg.kind:
            case channels.BATCH:
                assert isinstance(msg.value, pa.RecordBatch)
                self._deliver(inst, msg.value, msg.port)
            case channels.WATERMARK:
                assert isinstance(msg.value, int)
                self._input_watermark(inst, msg.key, msg.value)
            case channels.IDLE:
                self._input_idle(inst, msg.key, bool(msg.value))
            case channels.END:
                self._end_input(inst, msg.key)
                if inst.aligning and not inst.closed:
                    self._aligned(inst)
            case channels.BARRIER:
                assert isinstance(msg.value, int)
                self._barrier(inst, msg.key, msg.value)

    # -- checkpoints ---------------------------------------------------------------------------

    def _maybe_checkpoint(self) -> None:
        """On the caller's thread, every step: start a checkpoint when one is due (or a
        savepoint was asked for); stop once an asked-for stop-with-savepoint is recorded.
        """
        coord = self.job.coordinator
        if coord is None:
            return
        coord.check()
        if self._stop_after is not None and coord.wait(self._stop_after, 0):
            self.stopped = True
            return
        asked, self.savepoint_requested = self.savepoint_requested, None
        if asked is None:
            coord.trigger_if_due(self._rows_read())
            return
        if coord.busy():
            self.savepoint_requested = asked  # after the checkpoint in flight
            return
        epoch = coord.trigger(self._rows_read(), "savepoint")
        if asked == "stop":
            self._stop_after = epoch

    def _source_barrier(self, src: Instance, epoch: int) -> None:
        """A source takes its part (its position) and sends the barrier downstream."""
        assert self.job.coordinator is not None
        self.job.coordinator.ack(epoch, src, self._part(src, epoch))
        for key, target in self._consumers(src):
            self.channels[target].put_control(channels.BARRIER, key, epoch)

    def _barrier(self, inst: Instance, key: InputKey, epoch: int) -> None:
        """The barrier of checkpoint ``epoch`` came on input ``key``.

        (The coordinator starts a checkpoint only when the previous one is recorded, so
        barriers of two checkpoints never overlap.)
        """
        inst.aligning = epoch
        inst.barriered.add(key)
        self._aligned(inst)

    def _aligned(self, inst: Instance) -> None:
        """Once the barrier came on every open input: take the instance's part, pass the
        barrier on, and handle what was held back meanwhile before anything newer.
        """
        if not inst.open_inputs <= inst.barriered:
            return
        epoch, coord = inst.aligning, self.job.coordinator
        assert coord is not None
        coord.ack(epoch, inst, self._part(inst, epoch))
        for key, target in self._consumers(inst):
            self.channels[target].put_control(channels.BARRIER, key, epoch)
        inst.aligning = 0
        inst.barriered.clear()
        inst.replay.extendleft(reversed(inst.held))
        inst.held.clear()

    # -- delivery: into the consumer's channel -------------------------------------------------

    def _send_batch(self, target: Instance, key: InputKey, batch: pa.RecordBatch, port: int):
        me: Instance = self._local.inst
        channel = self.channels[target]
        shed = self.drop and me.reader is not None
        queued, waited = channel.put_batch(
            key, batch, port, give_up_after=self.drop_after if shed else None
        )
        if waited:
            me.metrics[-1].blocked_s += waited
        if not queued:
            me.metrics[0].events_dropped += batch.num_rows

    def _send_watermark(self, target: Instance, key: InputKey, watermark: int) -> None:
        self.channels[target].put_watermark(key, watermark)

    def _send_idle(self, target: Instance, key: InputKey, idle: bool) -> None:
        self.channels[target].put_control(channels.IDLE, key, idle)

    def _send_end(self, target: Instance, key: InputKey) -> None:
        self.channels[target].put_control(channels.END, key)
