"""Crash points for recovery tests: ``STREAMSQL_CRASH_AT='point:n'`` kills the process
(SIGKILL, nothing flushed or closed) the n-th time it reaches ``point``.

Points: ``batch`` (an operator instance is about to process a batch), ``checkpoint`` (a
checkpoint is complete but not yet recorded), ``commit`` (recorded, its sinks not yet
committed), ``sink-commit`` (between two sinks' commits). Unset, ``reached`` is one dict
lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_VAR = "STREAMSQL_CRASH_AT"
_point, _, _count = os.environ.get(_VAR, "").partition(":")
_left = int(_count) if _count.isdigit() else 1
_lock = threading.Lock()


def reached(point: str) -> None:
    """Count a visit to ``point``; on the chosen visit the process dies at once."""
    global _left
    if point != _point:
        return
    with _lock:
        _left -= 1
        if _left == 0:
            os.kill(os.getpid(), signal.SIGKILL)
