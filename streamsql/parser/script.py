"""Parsing a script: lark for the statement layer, then the AST builder."""

from __future__ import annotations

from lark.exceptions import LarkError, UnexpectedInput, VisitError

from streamsql.errors import ParseError, StreamSQLError
from streamsql.parser.ast import Statement
from streamsql.parser.grammar import lark_parser
from streamsql.parser.lark_errors import from_lark
from streamsql.parser.positions import LineIndex
from streamsql.parser.transformer import AstBuilder


def parse_script(text: str) -> list[Statement]:
    """The statements of a script, in order; empty statements are skipped.

    >>> [type(s).__name__ for s in parse_script("SET 'a' = 'b'; SHOW TABLES;;")]
    ['Set', 'Show']
    """
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput as err:
        raise from_lark(err, text) from None
    try:
        return AstBuilder(LineIndex(text)).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, StreamSQLError):
            raise err.orig_exc.with_source(text) from None
        raise ParseError(f"cannot parse the script: {err.orig_exc}", sql=text) from None
    except LarkError as err:
        raise ParseError(f"cannot parse the script: {err}", sql=text) from None


def parse_statement(text: str) -> Statement:
    """The one statement in ``text`` (a trailing ';' is allowed).

    >>> parse_statement("DROP TABLE IF EXISTS t").name
    't'
    """
    statements = parse_script(text)
    if len(statements) == 1:
        return statements[0]
    if not statements:
        raise ParseError(
            "expected a statement, found none",
            span=LineIndex(text).span(0) if text else None,
            sql=text,
        )
    raise ParseError(
        f"expected one statement, found {len(statements)}",
        span=statements[1].span,
        sql=text,
        hint="run a script of several statements with parse_script",
    )
