"""Parsing query bodies and column expressions with sqlglot, at positions in the script.

The grammar captures such fragments as text; here sqlglot (``Flink`` dialect) parses them
and every node's ``meta`` is moved from fragment offsets to offsets in the whole script.
"""

from __future__ import annotations

import re

from sqlglot import exp, parse_one
from sqlglot.errors import ParseError as SqlglotParseError
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from streamsql.errors import ParseError
from streamsql.parser.dialect import Flink
from streamsql.parser.positions import LineIndex
from streamsql.parser.spans import span_of
from streamsql.parser.sqlglot_errors import fragment_error, tokenize

# Tokens after which a SELECT with no columns is plainly cut short.
_AFTER_EMPTY_SELECT = {TokenType.FROM, TokenType.R_PAREN, TokenType.SEMICOLON}


#: RisingWave's clause after a query: results once per window, when it closes.
_EMIT_ON_CLOSE = re.compile(r"\s+EMIT\s+ON\s+WINDOW\s+CLOSE\s*$", re.IGNORECASE)


def split_emit_clause(index: LineIndex, start: int, end: int) -> tuple[int, int | None]:
    """Where the query ``index.text[start:end]`` ends without a trailing EMIT ON WINDOW
    CLOSE, and where that clause starts (None when there is none).

    >>> split_emit_clause(LineIndex("SELECT 1 emit on window close"), 0, 29)
    (8, 9)
    """
    found = _EMIT_ON_CLOSE.search(index.text, start, end)
    if found is None:
        return end, None
    clause = found.start() + len(found.group()) - len(found.group().lstrip())
    return found.start(), clause


def parse_query(index: LineIndex, start: int, end: int) -> exp.Expression:
    """The sqlglot tree of the query ``index.text[start:end]``, at script positions.

    >>> q = parse_query(LineIndex("--\\nSELECT a FROM t"), 3, 18)
    >>> q.find(exp.Table).this.meta["line"]
    2
    """
    tree = _parse(index, start, end, "query")
    if isinstance(tree, exp.Subquery) and not tree.alias:
        tree = tree.unnest()
    if not isinstance(tree, exp.Query | exp.Values):
        raise ParseError(
            "expected a query (SELECT, WITH, VALUES or a set operation)",
            span=index.span(start, end),
            sql=index.text,
        )
    _check_selects(tree, index, start, end)
    return tree


def parse_expression(index: LineIndex, start: int, end: int) -> exp.Expression:
    """The sqlglot tree of the expression ``index.text[start:end]``, at script positions."""
    tree = _parse(index, start, end, "expression")
    if isinstance(tree, exp.Alias):
        alias = tree.args["alias"]
        raise ParseError(
            f"unexpected {alias.sql(dialect=Flink)!r} after the expression",
            span=span_of(alias) or index.span(start, end),
            sql=index.text,
            hint="an operator or a ',' may be missing",
        )
    if isinstance(tree, exp.Query):
        raise ParseError(
            "expected an expression, found a query",
            span=index.span(start, end),
            sql=index.text,
            hint="wrap a scalar subquery in parentheses, or compute the column in a view",
        )
    return tree


def shift_positions(tree: exp.Expression, index: LineIndex, base: int) -> None:
    """Move every node's meta from offsets in a fragment at ``base`` to script offsets.

    sqlglot records the line and column of a token's last character; so does this.
    """
    seen: set[int] = set()
    for node in tree.walk():
        meta = getattr(node, "_meta", None)
        if not meta or id(meta) in seen or "start" not in meta:
            continue
        seen.add(id(meta))
        start = meta["start"] + base
        end = meta.get("end", meta["start"]) + base
        line, col = index.line_col(end)
        meta.update(start=start, end=end, line=line, col=col)


def _parse(index: LineIndex, start: int, end: int, what: str) -> exp.Expression:
    fragment = index.text[start:end]
    try:
        tree = parse_one(fragment, read=Flink)
    except SqlglotParseError as err:
        raise fragment_error(err, index, start, end, what) from None
    except SqlglotError as err:
        raise ParseError(
            f"cannot read the {what}: {err}", span=index.span(start, end), sql=index.text
        ) from None
    shift_positions(tree, index, start)
    return tree


def _check_selects(tree: exp.Expression, index: LineIndex, start: int, end: int) -> None:
    """sqlglot accepts ``SELECT FROM t``; Flink does not."""
    if all(s.expressions for s in tree.find_all(exp.Select)):
        return
    tokens = tokenize(index.text[start:end])
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type == TokenType.SELECT and (
            nxt is None or nxt.token_type in _AFTER_EMPTY_SELECT
        ):
            message = (
                "unexpected end of query after SELECT"
                if nxt is None
                else f"SELECT has no columns before {nxt.text}"
            )
            raise ParseError(
                message,
                span=index.span(start + tok.start, start + tok.end + 1),
                sql=index.text,
                hint="list the columns to select, or write SELECT *",
            )
