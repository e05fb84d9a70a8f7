"""Line and column lookup for offsets in a script, shared by one parse."""

from __future__ import annotations

import bisect
import re

from streamsql.errors import Span


class LineIndex:
    """The newline offsets of ``text``, so that an offset maps to (line, column) in log time.

    >>> LineIndex("ab\\ncd").span(4)
    Span(line=2, column=2, start=4, end=5)
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line_col(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column of the character at ``offset``."""
        line = bisect.bisect_left(self._newlines, offset)
        line_start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - line_start + 1

    def span(self, start: int, end: int | None = None) -> Span:
        """The span of ``text[start:end]`` (one character when ``end`` is omitted)."""
        line, column = self.line_col(start)
        return Span(line, column, start, start + 1 if end is None else max(end, start + 1))
