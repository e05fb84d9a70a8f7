"""The sqlglot dialect for streamsql's SELECT bodies and expressions (Flink SQL spelling).

Flink quotes identifiers with backquotes, doubles single quotes inside strings, and passes
tables and column descriptors to window table functions:
``TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))``. The stock sqlglot
dialects parse everything else; this one adds those two argument forms.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlglot import exp, generator, parser, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType


class TableArgument(exp.Expression):
    """``TABLE t [PARTITION BY k | PARTITION BY (k1, k2, ...)]`` passed to a table function."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "partition_by": False}


class FlinkTokenizer(tokens.Tokenizer):
    QUOTES: ClassVar[list[str]] = ["'"]
    IDENTIFIERS: ClassVar[list[str]] = ["`", '"']
    STRING_ESCAPES: ClassVar[list[str]] = ["'"]
    # SESSION is a window function name here, not the start of ALTER SESSION.
    KEYWORDS: ClassVar[dict] = {
        k: v for k, v in tokens.Tokenizer.KEYWORDS.items() if k not in ("SESSION",)
    }


class FlinkParser(parser.Parser):
    def _at_table_argument(self) -> bool:
        return (
            self._curr is not None
            and self._curr.token_type == TokenType.TABLE
            and self._next is not None
            and self._next.token_type != TokenType.L_PAREN
        )

    def _parse_table_argument(self) -> exp.Expression:
        self._advance()
        table = self._parse_table_parts()
        partition: Any = None
        if self._match(TokenType.PARTITION_BY):
            # One key, or several in parentheses: the comma after a lone key ends the
            # table argument (TABLE t PARTITION BY k, DESCRIPTOR(ts), ...).
            if self._match(TokenType.L_PAREN):
                partition = self._parse_csv(self._parse_disjunction)
                self._match_r_paren()
            else:
                partition = [self._parse_disjunction()]
        return self.expression(TableArgument(this=table, partition_by=partition))

    def _parse_lambda(self, alias: bool = False) -> exp.Expression | None:
        if self._at_table_argument():
            return self._parse_table_argument()
        # A named argument holding a table: DATA => TABLE bids
        if (
            self._curr is not None
            and self._next is not None
            and self._next.token_type == TokenType.FARROW
        ):
            index = self._index
            name = self._curr.text
            self._advance(2)
            if self._at_table_argument():
                value = self._parse_table_argument()
                return self.expression(exp.Kwarg(this=exp.var(name), expression=value))
            self._retreat(index)
        return super()._parse_lambda(alias)


def _table_argument_sql(gen: generator.Generator, e: TableArgument) -> str:
    text = f"TABLE {gen.sql(e, 'this')}"
    if e.args.get("partition_by"):
        keys = [gen.sql(p) for p in e.args["partition_by"]]
        text += " PARTITION BY " + (keys[0] if len(keys) == 1 else f"({', '.join(keys)})")
    return text


class FlinkGenerator(generator.Generator):
    TRANSFORMS: ClassVar[dict] = {
        **generator.Generator.TRANSFORMS,
        TableArgument: _table_argument_sql,
    }
    IDENTIFIER_START = "`"
    IDENTIFIER_END = "`"


class Flink(Dialect):
    """Flink SQL as streamsql reads it."""

    INDEX_OFFSET = 1  # ARRAY elements are numbered from 1
    Tokenizer = FlinkTokenizer
    Parser = FlinkParser
    Generator = FlinkGenerator


def to_sql(e: exp.Expression) -> str:
    """Render an expression in streamsql's dialect (for EXPLAIN and messages).

    >>> import sqlglot
    >>> to_sql(sqlglot.parse_one("select `value` + 1 from t", read=Flink))
    'SELECT `value` + 1 FROM t'
    """
    return _unquoted_where_safe(e).sql(dialect=Flink)


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unquoted_where_safe(e: exp.Expression) -> exp.Expression:
    """Drop backquotes from plain names that are not keywords (`price` -> price)."""
    if not any(i.args.get("quoted") for i in e.find_all(exp.Identifier)):
        return e

    def unquote(node: exp.Expression) -> exp.Expression:
        if (
            isinstance(node, exp.Identifier)
            and node.args.get("quoted")
            and _PLAIN.match(node.name)
            and node.name.upper() not in FlinkTokenizer.KEYWORDS
            and node.name.upper() not in _RESERVED
        ):
            return exp.Identifier(this=node.name, quoted=False)
        return node

    return e.transform(unquote)


#: Words that need quoting as identifiers even though sqlglot's tokenizer does not list them.
_RESERVED = frozenset(
    [
        "VALUE",
        "VALUES",
        "TIMESTAMP",
        "DATE",
        "TIME",
        "USER",
        "ROW",
        "ROWS",
        "TABLE",
        "ORDER",
        "GROUP",
        "WINDOW",
        "RANGE",
        "YEAR",
        "QUARTER",
        "MONTH",
        "WEEK",
        "DAY",
        "HOUR",
        "MINUTE",
        "SECOND",
        "INTERVAL",
        "START",
        "END",
        "KEY",
        "RESULT",
        "POSITION",
        "SYSTEM",
        "CURRENT",
        "PARTITION",
        "LOCAL",
        "AT",
        "ZONE",
        "MATCH",
        "RETURNS",
        "SESSION",
        "LANGUAGE",
        "RANK",
        "FUNCTION",
        "NUMBER",
    ]
)
