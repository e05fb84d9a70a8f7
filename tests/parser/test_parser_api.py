"""The public entry points: parse_script, parse_statement, and what never escapes them."""

from __future__ import annotations

import doctest
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsql.errors import ParseError
from streamsql.parser import parse_script, parse_statement
from streamsql.parser.ast import CreateTable, Drop, Insert, Query, Set
from streamsql.parser.grammar import grammar_path


def test_parse_statement_returns_the_one_statement() -> None:
    stmt = parse_statement("DROP VIEW IF EXISTS v;")
    assert stmt == Drop("VIEW", "v", if_exists=True)


def test_parse_statement_refuses_two_statements() -> None:
    with pytest.raises(ParseError) as caught:
        parse_statement("SHOW TABLES;\nSHOW VIEWS")
    assert "found 2" in caught.value.message
    assert caught.value.span is not None and caught.value.span.line == 2


@pytest.mark.parametrize("script", ["", "  ", ";", "-- only a comment", "/* c */ ;;"])
def test_empty_scripts(script: str) -> None:
    assert parse_script(script) == []
    with pytest.raises(ParseError, match="found none"):
        parse_statement(script)


def test_keywords_are_case_insensitive_and_whole_words() -> None:
    stmt = parse_statement("cReAtE tAbLe tables_x (selected InT NoT nUlL) wItH ('a' = 'b')")
    assert isinstance(stmt, CreateTable)
    assert stmt.name == "tables_x"
    assert stmt.columns[0].name == "selected" and not stmt.columns[0].nullable


def test_equal_statements_compare_equal_regardless_of_position() -> None:
    moved = parse_statement("\n\n  SET  'a'='b' ;")
    assert parse_statement("SET 'a' = 'b'") == moved == Set("a", "b")


def test_insert_keeps_its_query_tree() -> None:
    stmt = parse_statement("INSERT INTO s SELECT a FROM t")
    assert isinstance(stmt, Insert) and isinstance(stmt.query, Query)
    assert stmt.query.tree.sql() == "SELECT a FROM t"


def test_grammar_file_is_found() -> None:
    assert grammar_path().name == "streamsql.lark" and grammar_path().exists()


@pytest.mark.parametrize(
    "module",
    [
        "streamsql.parser.grammar",
        "streamsql.parser.positions",
        "streamsql.parser.fragments",
        "streamsql.parser.script",
        "streamsql.parser.type_rules",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_named_table_argument() -> None:
    stmt = parse_statement(
        "SELECT * FROM TABLE(TUMBLE(DATA => TABLE bid, TIMECOL => DESCRIPTOR(ts), "
        "SIZE => INTERVAL '10' MINUTES))"
    )
    call = stmt.tree.args["from_"].this.this.expressions[0]
    kwargs = {k.this.name: type(k.expression).__name__ for k in call.expressions}
    assert kwargs == {"DATA": "TableArgument", "TIMECOL": "Anonymous", "SIZE": "Interval"}


_SQL_WORDS = (
    "CREATE TABLE VIEW SELECT INSERT INTO FROM WHERE WITH AS WATERMARK FOR PRIMARY KEY NOT "
    "ENFORCED ROW< ARRAY< > INT TIMESTAMP(3) SET EXPLAIN EXECUTE STATEMENT BEGIN END t a "
    "( ) , ; = 'k' 'v `q` ` /* */ 1 +"
)
_PIECES = st.sampled_from([*_SQL_WORDS.split(), "--c\n", "\n"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=14).map(" ".join))
def test_any_input_parses_or_raises_parse_error(script: str) -> None:
    try:
        parse_script(script)
    except ParseError as err:
        assert err.sql == script
        if err.span is not None:
            assert 1 <= err.span.line <= script.count("\n") + 1
            assert 0 <= err.span.start <= len(script)
