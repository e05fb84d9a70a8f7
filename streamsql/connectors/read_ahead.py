"""Read ahead: decode a source's next chunks on a thread of its own while the job works on
the current one.

A file source's thread otherwise alternates between decoding a chunk (pyarrow's Parquet,
CSV or JSON reader) and pushing it through its operators; with a spare core the two
overlap. The chunks come out in the reader's order, an error comes out where the reader
raised it, and at most ``depth`` chunks wait decoded, so memory stays bounded.

``'source.read-ahead'`` chooses: ``auto`` (the default) reads ahead when the table is read
by fewer instances than the machine has cores, so that each has a core to spare; ``true``
and ``false`` force it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def wanted(setting: str, parallelism: int) -> bool:
    """Whether to read ahead, for a 'source.read-ahead' of ``setting`` and a table read by
    ``parallelism`` instances.
    """
    if setting == "auto":
        return parallelism < cores()
    return setting == "true"


class ReadAhead(Generic[T]):
    """An iterator over ``source``'s items, taken from it on a thread of its own, at most
    ``depth`` ahead of the caller. ``close()`` stops the thread and closes ``source``; so
    does dropping the iterator unclosed (the thread holds no reference to it, and looks
    every ``WAKE_S`` while it waits).

    >>> items = ReadAhead(iter(range(5)))
    >>> list(items)
    [0, 1, 2, 3, 4]
    """

    def __init__(self, source: Iterator[T], depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=_produce,
            args=(source, self._queue, self._stop, weakref.ref(self)),
            name="streamsql read-ahead",
            daemon=True,
        )
        self._thread.start()

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value  # type: ignore[return-value]
        self._done = True
        self._thread.join()
        if kind == _ERROR:
            assert isinstance(value, BaseException)
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop reading: what was read ahead is dropped, the source is closed."""
        self._done = True
        self._stop.set()
        while self._thread.is_alive():
            # Make room, so that a thread waiting to hand over an item goes on and stops.
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.01)
        self._thread.join()


#: How often a thread waiting to hand over an item looks whether it should stop.
WAKE_S = 0.1


def _produce(
    source: Iterator[T],
    out: queue.Queue[tuple[str, object]],
    stop: threading.Event,
    owner: weakref.ref,
) -> None:
    """Move ``source``'s items into ``out`` until it ends, ``stop`` is set or the owning
    iterator is gone; then close ``source``.
    """

    def hand_over(message: tuple[str, object]) -> bool:
        while not stop.is_set() and owner() is not None:
            try:
                out.put(message, timeout=WAKE_S)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in source:
            if not hand_over((_ITEM, item)):
                return
        hand_over((_END, None))
    except BaseException as e:  # raised to the caller where the reader raised it
        hand_over((_ERROR, e))
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
