"""Split a text file into blocks of whole lines, with byte offsets and line numbers.

CSV and JSON-lines readers parse a block at a time; the line table lets them name the line of
a bad record and resume a file at a byte offset without re-reading what came before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_NL = 10
_CR = 13


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of a file: ``data[starts[i]:ends[i]]`` is line ``first_line + i``.

    ``ends`` exclude the line break (``\\n`` or ``\\r\\n``); ``offset`` is the file position of
    ``data[0]``; the line after the block starts at file position ``offset + len(data)``.
    """

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64, relative to data
    ends: np.ndarray  # int64, relative to data
    first_line: int
    offset: int

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def lines(self) -> np.ndarray:
        """1-based line number of every line."""
        return self.first_line + np.arange(self.count, dtype=np.int64)

    @property
    def next_offsets(self) -> np.ndarray:
        """File position just after each line (where the following line starts)."""
        return self.offset + np.append(self.starts[1:], len(self.data))

    @property
    def end_offset(self) -> int:
        return self.offset + len(self.data)

    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def first_bytes(self) -> np.ndarray:
        """The first byte of every line (0 for an empty line)."""
        pick = np.minimum(self.starts, max(len(self.data) - 1, 0))
        first = self.data[pick] if len(self.data) else np.zeros(self.count, np.uint8)
        return np.where(self.ends > self.starts, first, 0)

    def text(self, i: int) -> str:
        """Line ``i`` of the block, for error messages."""
        raw = self.data[self.starts[i] : self.ends[i]].tobytes()
        return raw.decode("utf-8", errors="replace")

    def select(self, keep: np.ndarray) -> bytes:
        """The kept lines (with their line breaks) as one buffer."""
        if keep.all():
            return self.data.tobytes() if len(self.data) else b""
        spans = np.append(self.starts[1:], len(self.data)) - self.starts
        mask = np.repeat(keep, spans)
        return self.data[mask].tobytes()


def iter_line_blocks(
    path: str, *, offset: int = 0, first_line: int = 1, block_bytes: int = 4 << 20
) -> Iterator[LineBlock]:
    """Blocks of about ``block_bytes`` of whole lines, from byte ``offset`` to the end."""
    with open(path, "rb") as f:
        f.seek(offset)
        carry = b""
        while True:
            chunk = f.read(block_bytes)
            eof = not chunk
            buf = carry + chunk if carry else chunk
            if not buf:
                return
            data = np.frombuffer(buf, dtype=np.uint8)
            breaks = np.flatnonzero(data == _NL)
            if eof:
                cut = len(data)
            elif breaks.size:
                cut = int(breaks[-1]) + 1
            else:
                carry = buf  # a line longer than the block: read on until it ends
                continue
            block = _block(data[:cut], breaks[breaks < cut], first_line, offset)
            yield block
            carry = buf[cut:]
            offset += cut
            first_line += block.count
            if eof:
                return


def _block(data: np.ndarray, breaks: np.ndarray, first_line: int, offset: int) -> LineBlock:
    starts = np.concatenate(([0], breaks + 1)).astype(np.int64)
    ends = np.append(breaks, len(data)).astype(np.int64)
    if len(breaks) and breaks[-1] == len(data) - 1:
        starts, ends = starts[:-1], ends[:-1]  # no empty line after the final break
    has_cr = ends > starts
    has_cr[has_cr] = data[ends[has_cr] - 1] == _CR
    ends = ends - has_cr
    return LineBlock(data, starts, ends, first_line, offset)
