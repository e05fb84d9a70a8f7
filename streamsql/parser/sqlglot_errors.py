"""Rewording sqlglot's errors in a query or expression, at positions in the whole script.

sqlglot reports the line and column of the offending token's last character inside the
fragment it was given, and a terse description ("Invalid expression / Unexpected token").
This module finds that token again, moves it to the script and says what went wrong in a
user's words: "unexpected 'FORM'" with "did you mean FROM?", "unexpected end of query after
WHERE", "missing ';' before INSERT".
"""

from __future__ import annotations

import difflib
import re

from sqlglot.errors import ParseError as SqlglotParseError
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from streamsql.errors import ParseError
from streamsql.parser.dialect import Flink
from streamsql.parser.keywords import CLAUSE_KEYWORDS, NEW_STATEMENT_KEYWORDS
from streamsql.parser.positions import LineIndex

_VALUE_TOKENS = {TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER}
_REQUIRED = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>")
_PHRASES = {
    "Where": "WHERE clause",
    "Having": "HAVING clause",
    "Qualify": "QUALIFY clause",
    "Limit": "LIMIT clause",
    "Offset": "OFFSET clause",
    "Order": "ORDER BY clause",
    "Group": "GROUP BY clause",
    "Join": "JOIN",
    "Cast": "CAST",
    "Interval": "INTERVAL",
}


def tokenize(fragment: str) -> list[Token]:
    """sqlglot's tokens for ``fragment``, or none when it cannot be tokenized."""
    try:
        return Flink().tokenize(fragment)
    except SqlglotError:
        return []


def fragment_error(
    err: SqlglotParseError, index: LineIndex, start: int, end: int, what: str
) -> ParseError:
    """The ParseError for sqlglot's ``err`` in ``index.text[start:end]``.

    ``what`` names the fragment in messages: "query" or "expression".
    """
    fragment = index.text[start:end]
    info = err.errors[0] if err.errors else {}
    description = str(info.get("description") or err).strip()
    tokens = tokenize(fragment)
    i = _error_token(tokens, fragment, info)
    if i is None:
        span = index.span(start, end)
        return ParseError(f"cannot parse the {what}: {description}", span=span, sql=index.text)
    at_end = i == len(tokens) - 1
    message, hint, culprit = _reword(description, tokens, i, at_end, fragment, what)
    span = index.span(start + culprit.start, start + culprit.end + 1)
    return ParseError(message, span=span, sql=index.text, hint=hint)


def _reword(
    description: str, tokens: list[Token], i: int, at_end: bool, fragment: str, what: str
) -> tuple[str, str | None, Token]:
    """(message, hint, token to point at) for one sqlglot error description."""
    tok = tokens[i]
    shown = _show(tok, fragment)
    if description.startswith(("Invalid expression", "Unexpected token")):
        typo = _typo(tokens, i)
        if typo is not None:
            bad, keyword = typo
            return f"unexpected {_show(bad, fragment)}", f"did you mean {keyword}?", bad
        if tok.text.upper() in NEW_STATEMENT_KEYWORDS and _starts_line(tokens, i, fragment):
            return f"missing ';' before {tok.text.upper()}", "end each statement with ';'", tok
        return f"unexpected {shown}", None, tok
    if description.startswith("Expecting )"):
        where = f"at the end of the {what}" if at_end else f"before {shown}"
        return f"missing ')' {where}", "close every '(' with ')'", tok
    required = _REQUIRED.match(description)
    if at_end:
        detail = "" if required else ": " + _lower_first(description)
        return f"unexpected end of {what} after {shown}{detail}", None, tok
    if required:
        phrase = _PHRASES.get(required.group(1), "expression")
        return f"incomplete {phrase} before {shown}", None, tok
    return f"{_lower_first(description)} (at {shown})", None, tok


def _error_token(tokens: list[Token], fragment: str, info: dict) -> int | None:
    """The index of the token sqlglot complained about (it gives its last character)."""
    line, col = info.get("line"), info.get("col")
    if not tokens or not isinstance(line, int) or not isinstance(col, int):
        return None
    lines = fragment.split("\n")
    last = sum(len(text) + 1 for text in lines[: line - 1]) + col - 1
    for i, tok in enumerate(tokens):
        if tok.start <= last <= tok.end:
            return i
    return len(tokens) - 1 if last >= tokens[-1].end else None


def _typo(tokens: list[Token], i: int) -> tuple[Token, str] | None:
    """A plain word at or just before the error that is one slip away from a keyword."""
    for j in range(i, max(i - 3, -1), -1):
        tok = tokens[j]
        word = tok.text.upper()
        if tok.token_type != TokenType.VAR or len(word) < 2 or word in CLAUSE_KEYWORDS:
            continue
        near = difflib.get_close_matches(word, CLAUSE_KEYWORDS, n=1, cutoff=0.75)
        if near and abs(len(near[0]) - len(word)) <= 1:
            return tok, near[0]
    return None


def _starts_line(tokens: list[Token], i: int, fragment: str) -> bool:
    before = tokens[i - 1].end + 1 if i else 0
    return "\n" in fragment[before : tokens[i].start]


def _show(tok: Token, fragment: str) -> str:
    text = fragment[tok.start : tok.end + 1]
    if tok.token_type not in _VALUE_TOKENS and re.fullmatch(r"[A-Za-z_ ]+", text):
        return text.upper()
    return repr(text)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
