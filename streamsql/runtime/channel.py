"""A bounded channel: the input queue of one operator instance in the threaded executor.

Producers put messages (batches, watermarks, idle marks, end of input) and the instance's
thread takes them in order; per producer the order is first in, first out, so a batch
always comes before the watermark its producer sent after it.

Only batches fill the channel, counted in batches and in bytes. A producer that finds the
channel full (either limit reached: the high mark) blocks until the consumer has taken it
below the low mark (half of each limit), so that it resumes with room for several batches
rather than waking for every one taken (no thrashing). Watermarks and idle marks never
block: a producer's watermark still waiting in the channel is overwritten by its next one,
so at most one per producer waits behind its last batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import pyarrow as pa

from streamsql.runtime.metrics import OperatorMetrics

BATCH, WATERMARK, IDLE, END = "batch", "watermark", "idle", "end"
#: A checkpoint barrier (value: the checkpoint id); like END, it never waits.
BARRIER = "barrier"


@dataclass(eq=False)
class Message:
    """One message from the producer known by ``key`` (edge index, producer instance)."""

    kind: str
    key: tuple[int, int]
    value: object = None  # BATCH: the batch; WATERMARK: epoch ms; IDLE: True/False
    port: int = 0  # BATCH: the consumer's input the edge feeds
    size: int = 0  # BATCH: bytes


class Closed(Exception):
    """The channel was closed (the job is stopping) while a producer waited."""


class Channel:
    """Messages for one consumer, bounded in batches and bytes.

    ``metrics`` (the consumer's first operator) shows the fill: ``queued_batches`` and
    ``queue_capacity``.

    >>> ch = Channel(max_batches=2, max_bytes=1 << 20)
    >>> ch.put_batch((0, 0), pa.record_batch({"x": [1]}), 0)
    (True, 0.0)
    >>> ch.put_watermark((0, 0), 5)
    >>> [m.kind for m in (ch.get(0), ch.get(0))], ch.get(0)
    (['batch', 'watermark'], None)
    """

    def __init__(
        self, max_batches: int, max_bytes: int, metrics: OperatorMetrics | None = None
    ) -> None:
        self.max_batches = max(1, max_batches)
        self.max_bytes = max(1, max_bytes)
        self.low_batches = self.max_batches // 2
        self.low_bytes = self.max_bytes // 2
        self.metrics = metrics or OperatorMetrics(0, 0, "channel")
        self.metrics.queue_capacity = self.max_batches
        self._queue: deque[Message] = deque()
        self._batches = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._writable = threading.Condition(self._lock)
        self._last_wm: dict[tuple[int, int], Message] = {}  # a producer's trailing watermark
        #: When the channel reached the high mark; None once it is back at the low mark.
        self.blocked_since: float | None = None
        self.max_queued = 0  # the most batches it ever held (tests check the bound)
        self.closed = False

    # -- producers -------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """At the high mark in batches or in bytes."""
        return self._batches >= self.max_batches or self._bytes >= self.max_bytes

    def put_batch(
        self,
        key: tuple[int, int],
        batch: pa.RecordBatch,
        port: int,
        *,
        give_up_after: float | None = None,
    ) -> tuple[bool, float]:
        """Queue a batch, waiting while the channel is blocked; returns whether it was
        queued and the seconds waited.

        ``give_up_after``: instead of waiting on, give up (the batch is not queued) once
        the channel has been blocked that many seconds. Raises ``Closed`` when the channel
        is closed meanwhile.
        """
        size = batch.nbytes
        waited = 0.0
        with self._lock:
            if self.blocked_since is not None:
                began = time.perf_counter()
                try:
                    while self.blocked_since is not None and not self.closed:
                        timeout = None
                        if give_up_after is not None:
                            timeout = give_up_after - (time.monotonic() - self.blocked_since)
                            if timeout <= 0:
                                return False, time.perf_counter() - began
                        self._writable.wait(timeout)
                finally:
                    waited = time.perf_counter() - began
            self._append(Message(BATCH, key, batch, port, size))
            self._batches += 1
            self._bytes += size
            self.max_queued = max(self.max_queued, self._batches)
            self.metrics.queued_batches = self._batches
            if self.full:
                self.blocked_since = time.monotonic()
        return True, waited

    def put_watermark(self, key: tuple[int, int], watermark: int) -> None:
        with self._lock:
            pending = self._last_wm.get(key)
            if pending is not None:
                pending.value = watermark  # still waiting behind the producer's last batch
                return
            msg = Message(WATERMARK, key, watermark)
            self._append(msg)
            self._last_wm[key] = msg

    def put_control(self, kind: str, key: tuple[int, int], value: object = None) -> None:
        """An idle mark or the end of input: never waits."""
        with self._lock:
            self._append(Message(kind, key, value))

    def _append(self, msg: Message) -> None:
        if self.closed:
            raise Closed
        if msg.kind != WATERMARK:
            self._last_wm.pop(msg.key, None)
        self._queue.append(msg)
        self._readable.notify()

    # -- the consumer ----------------------------------------------------------------------

    def get(self, timeout: float | None) -> Message | None:
        """The next message, waiting up to ``timeout`` seconds (None: until one comes or
        the channel is closed); None when none came.
        """
        with self._lock:
            if not self._queue and timeout != 0:
                self._readable.wait_for(lambda: self._queue or self.closed, timeout)
            if not self._queue:
                return None
            msg = self._queue.popleft()
            if msg.kind == BATCH:
                self._batches -= 1
                self._bytes -= msg.size
                self.metrics.queued_batches = self._batches
                low = self._batches <= self.low_batches and self._bytes <= self.low_bytes
                if self.blocked_since is not None and low:
                    self.blocked_since = None  # blocked producers resume
                    self._writable.notify_all()
            elif msg.kind == WATERMARK and self._last_wm.get(msg.key) is msg:
                del self._last_wm[msg.key]
            return msg

    def empty(self) -> bool:
        return not self._queue

    def close(self) -> None:
        """Wake every waiting producer and the consumer: the job is stopping."""
        with self._lock:
            self.closed = True
            self._readable.notify_all()
            self._writable.notify_all()
