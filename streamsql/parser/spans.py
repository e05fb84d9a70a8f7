"""Positions of sqlglot nodes in the script text."""

from __future__ import annotations

from sqlglot import exp

from streamsql.errors import Span


def span_of(e: exp.Expression | None) -> Span | None:
    """The span of the leftmost positioned node in ``e`` (sqlglot keeps positions on
    identifiers, literals and function names), covering the whole subtree when it can.
    """
    if e is None:
        return None
    starts: list[tuple[int, int, int]] = []
    ends: list[int] = []
    for node in e.walk():
        meta = getattr(node, "_meta", None) or {}
        if "line" in meta and "col" in meta:
            starts.append((meta.get("start", -1), meta["line"], meta["col"]))
            if "end" in meta:
                ends.append(meta["end"] + 1)
    if not starts:
        return None
    start, line, col = min(starts)
    end = max(ends) if ends else start + 1
    # sqlglot's col is the column of the token's last character; recover the first.
    if start >= 0:
        first = next(
            (n for n in e.walk() if (getattr(n, "_meta", None) or {}).get("start") == start), None
        )
        meta = first._meta if first is not None else {}
        width = meta.get("end", start) - start
        col = max(1, col - width)
    return Span(line, col, start, end)
