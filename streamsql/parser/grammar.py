"""Loading the statement grammar: one cached LALR parser that records positions."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark

import streamsql

GRAMMAR_FILE = "streamsql.lark"


def grammar_path() -> Path:
    """Where ``streamsql.lark`` lives: inside the installed package, else in the repo.

    The wheel ships the grammar as ``streamsql/grammar/streamsql.lark``; a source checkout
    keeps it in the top-level ``grammar/`` folder next to the package.
    """
    package = Path(streamsql.__file__).parent
    shipped = package / "grammar" / GRAMMAR_FILE
    if shipped.exists():
        return shipped
    return package.parent / "grammar" / GRAMMAR_FILE


@functools.cache
def lark_parser() -> Lark:
    """The statement parser, built once per process.

    >>> [str(statement.data) for statement in lark_parser().parse("SHOW TABLES;;SET").children]
    ['show', 'set_stmt']
    """
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,  # the LALR tables are built once per grammar version, not per process
    )
