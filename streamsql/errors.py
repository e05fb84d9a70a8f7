"""The error hierarchy: every error a user can see, with positions that point at the SQL."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A position in a SQL script: 1-based line and column, 0-based offsets [start, end)."""

    line: int
    column: int
    start: int = -1
    end: int = -1

    @classmethod
    def at_offset(cls, text: str, start: int, end: int | None = None) -> Span:
        """The span of ``text[start:end]``.

        >>> Span.at_offset("a\\nbc", 3)
        Span(line=2, column=2, start=3, end=4)
        """
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        return cls(line, column, start, start + 1 if end is None else end)

    def shifted(self, text: str, base: int) -> Span:
        """This span, measured inside a fragment that starts at offset ``base`` of ``text``."""
        if self.start < 0:
            return self
        return Span.at_offset(text, base + self.start, base + max(self.end, self.start + 1))


class StreamSQLError(Exception):
    """Root of every error streamsql raises on purpose."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        sql: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.sql = sql
        self.hint = hint

    def with_source(self, sql: str, span: Span | None = None) -> StreamSQLError:
        """Attach the script text (and a span if none is known yet) for caret display."""
        if self.sql is None:
            self.sql = sql
        if self.span is None and span is not None:
            self.span = span
        return self

    def __str__(self) -> str:
        parts = []
        where = f" at line {self.span.line}, column {self.span.column}" if self.span else ""
        parts.append(f"{self.kind}{where}: {self.message}")
        if self.span and self.sql is not None:
            parts.append(caret_excerpt(self.sql, self.span))
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class ParseError(StreamSQLError):
    """The SQL text is not well formed."""

    kind = "syntax error"


class BindError(StreamSQLError):
    """The SQL is well formed but names or types do not resolve."""

    kind = "error"


class PlanError(StreamSQLError):
    """The query is valid SQL that the streaming engine cannot run as written."""

    kind = "plan error"


class ConfigError(StreamSQLError):
    """A connector option, a SET key or a value is unknown or malformed.

    ``option`` names the offending key, so that the caller can point at it in the DDL.
    """

    kind = "config error"

    def __init__(self, message: str, *, option: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.option = option


class ExecError(StreamSQLError):
    """The job failed while running (bad input data, a failing sink, ...)."""

    kind = "runtime error"


def caret_excerpt(sql: str, span: Span) -> str:
    """The line of ``sql`` holding ``span`` with a caret underneath.

    >>> print(caret_excerpt("SELECT x\\nFROM t", Span(2, 6, 14, 15)))
      2 | FROM t
        |      ^
    """
    lines = sql.split("\n")
    if not 1 <= span.line <= len(lines):
        return ""
    text = lines[span.line - 1]
    width = 1
    if span.end > span.start >= 0:
        width = max(1, min(span.end - span.start, len(text) - span.column + 1))
    gutter = f"{span.line:>3} | "
    pad = " " * (len(gutter) - 2) + "| "
    return f"{gutter}{text}\n{pad}{' ' * (span.column - 1)}{'^' * width}"


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates closest to ``name``, best first (case-insensitive).

    >>> closest("pirce", ["price", "auction", "bidder"])
    ['price']
    """
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def did_you_mean(name: str, candidates: Iterable[str], what: str = "") -> str | None:
    """A 'did you mean' hint, or a list of what exists when nothing is close."""
    pool = list(dict.fromkeys(candidates))
    near = closest(name, pool)
    if near:
        return "did you mean " + " or ".join(repr(c) for c in near) + "?"
    if pool and len(pool) <= 20:
        label = f"{what} " if what else ""
        return f"available {label}names: " + ", ".join(pool)
    return None
