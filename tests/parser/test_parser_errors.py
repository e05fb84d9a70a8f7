"""Syntax errors: the message, the line and column they point at, and the hint."""

from __future__ import annotations

import pytest

from streamsql.errors import ParseError, StreamSQLError
from streamsql.parser import parse_script

MULTI = "SET 'a' = 'b';\nSHOW TABLES;\n"

KV = "'key' = 'value'"
WITH_A = "CREATE TABLE t (a INT) WITH "
WM = "CREATE TABLE t (ts TIMESTAMP(3), "

# (script, message fragment, line, column, hint fragment or None)
# fmt: off
CASES = [
    # unknown statements and missing semicolons
    ("CRATE TABLE t (a INT)", "unknown statement 'CRATE'", 1, 1, "did you mean CREATE?"),
    (MULTI + "SELEC a FROM t", "unknown statement 'SELEC'", 3, 1, "did you mean SELECT?"),
    ("EXPLIAN SELECT 1", "unknown statement 'EXPLIAN'", 1, 1, "did you mean EXPLAIN?"),
    ("SHOW TABLES\nSHOW VIEWS", "missing ';' before SHOW", 2, 1, "end each statement with ';'"),
    ("CREATE TABLE t (a INT)\nCREATE TABLE u (b INT)", "missing ';' before CREATE", 2, 1, "';'"),
    ("SELECT a FROM t\nSELECT b FROM u", "missing ';' before SELECT", 2, 1, "';'"),
    ("INSERT INTO s SELECT a FROM t\nINSERT INTO s SELECT 1", "';' before INSERT", 2, 1, None),
    ("CREATE TABLEX t (a INT)", "unexpected 'TABLEX'", 1, 8, "did you mean TABLE?"),
    ("INSERT t SELECT 1", "expected INTO or OVERWRITE", 1, 8, None),
    ("DROP TABLE", "unexpected end of script", 1, 11, None),
    # CREATE TABLE column lists
    ("CREATE TABLE t (a INT, b STRING WITH ('k' = 'v')", "missing ')'", 1, 33, "add ')'"),
    ("CREATE TABLE t (\n  a INT,\n  b STRING\n", "missing ')'", 3, 11, "add ')'"),
    (MULTI + "CREATE TABLE t (a INT;", "missing ')'", 3, 22, "add ')'"),
    ("CREATE TABLE t (a INT b INT)", "unexpected 'b'", 1, 23, "',' may be missing"),
    ("CREATE TABLE t (a INT,)", "unexpected ')' after ','", 1, 23, "trailing ','"),
    ("CREATE TABLE t (a INT, a STRING)", "duplicate column 'a'", 1, 24, None),
    ("CREATE TABLE t (a INT METADATA)", "METADATA columns", 1, 23, None),
    # types
    ("CREATE TABLE t (a BIGNT)", "unknown type 'BIGNT'", 1, 19, "'BIGINT'"),
    ("CREATE TABLE t (\n  r ROW<x INT, y STRNG>\n)", "unknown type 'STRNG'", 2, 18, "'STRING'"),
    ("CREATE TABLE t (a DECIMAL(40, 2))", "out of range", 1, 19, "precision is 1..38"),
    ("CREATE TABLE t (a TIMESTAMP(3) WITH TIME ZONE)", "TIME ZONE", 1, 37, "LOCAL TIME ZONE"),
    ("CREATE TABLE t (r ROW<a INT, a INT>)", "duplicate field 'a'", 1, 30, None),
    # WITH options
    (WITH_A + "(connector = 'kafka')", "quoted strings", 1, 30, KV),
    (WITH_A + "('connector' : 'kafka')", "expected '='", 1, 42, KV),
    (WITH_A + "('connector' = kafka)", "quoted strings", 1, 44, KV),
    (WITH_A + "('k' = 'v' 'x' = 'y')", "missing ','", 1, 40, None),
    (WITH_A + "('k' = 'v'", "missing ')' to close WITH", 1, 39, None),
    # WATERMARK and PRIMARY KEY
    (WM + "WATERMARK FOR ts)", "needs AS", 1, 50, "WATERMARK FOR ts AS"),
    ("CREATE TABLE t (\n  ts TIMESTAMP(3),\n  WATERMARK FOR ts ts - INTERVAL '1' SECOND\n)",
     "WATERMARK FOR ts needs AS", 3, 20, "ts AS ts - INTERVAL"),
    (WM + "WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts)", "only one WATERMARK", 1, 58, None),
    ("CREATE TABLE t (id INT, PRIMARY KEY (id))", "NOT ENFORCED", 1, 25, "Flink SQL requires"),
    ("CREATE TABLE t (id INT PRIMARY KEY)", "NOT ENFORCED", 1, 24, "does not check"),
    ("CREATE TABLE t (a INT PRIMARY KEY NOT ENFORCED, PRIMARY KEY (a) NOT ENFORCED)",
     "only one PRIMARY KEY", 1, 49, None),
    # computed column expressions (parsed by sqlglot, positions in the script)
    ("CREATE TABLE t (a INT, c AS a +)", "unexpected end of expression after '+'", 1, 31, None),
    (MULTI + "CREATE TABLE t (\n  a INT,\n  c AS a b\n)", "unexpected 'b'", 5, 10, "operator"),
    ("CREATE TABLE t (a INT, c AS SELECT 1)", "found a query", 1, 29, None),
    ("CREATE TABLE t (a INT, c AS CAST(a AS))", "expected TYPE after CAST", 1, 38, None),
    # query bodies (parsed by sqlglot, positions in the script)
    ("SELECT a FORM t", "unexpected 'FORM'", 1, 10, "did you mean FROM?"),
    ("SELECT a, b FROM t WHEER a > 1", "unexpected 'WHEER'", 1, 20, "did you mean WHERE?"),
    ("SELECT a FROM t GROUP BYY a", "unexpected 'BYY'", 1, 23, "did you mean BY?"),
    (MULTI + "SELECT a,\n  b FROM t WHERE", "unexpected end of query after WHERE", 4, 12, None),
    (MULTI + "SELECT a FROM t WHERE GROUP BY a", "incomplete WHERE clause", 3, 23, None),
    ("CREATE VIEW v AS\nSELECT (a FROM t", "missing ')' before FROM", 2, 11, "close every '('"),
    ("SELECT 1 1", "unexpected '1'", 1, 10, None),
    ("SELECT FROM t", "SELECT has no columns", 1, 1, "SELECT *"),
    ("INSERT INTO s SELECT", "unexpected end of query after SELECT", 1, 15, None),
    ("EXECUTE STATEMENT SET BEGIN\n  INSERT INTO s SELECT a FORM t;\nEND",
     "unexpected 'FORM'", 2, 26, "FROM"),
    # quotes and comments
    ("SELECT 'abc", "unterminated string", 1, 8, "''"),
    ("SELECT `abc FROM t", "unterminated quoted name", 1, 8, "`"),
    ("SELECT 1 /* never closed", "unterminated comment", 1, 10, "*/"),
    ("SET 'a' = 'b", "unterminated string", 1, 11, None),
    # SET, RESET, SHOW, EXPLAIN, statement sets
    ("SET key = 'v'", "SET takes a quoted key and value", 1, 5, "SET 'key' = 'value'"),
    (MULTI + "SET 'key' 'v'", "SET takes a quoted key", 3, 11, "SET 'key' = 'value'"),
    ("RESET key", "RESET takes a quoted key", 1, 7, "RESET 'key'"),
    ("SHOW TABLE", "cannot SHOW TABLE", 1, 6, "SHOW TABLES"),
    ("EXPLAIN VERBSE SELECT 1", "unknown EXPLAIN detail 'VERBSE'", 1, 9, "did you mean VERBOSE?"),
    ("EXPLAIN CREATE TABLE t (a INT)", "EXPLAIN cannot explain CREATE", 1, 9, None),
    ("EXPLAIN ANALYSIS SELECT 1", "unknown EXPLAIN detail 'ANALYSIS'", 1, 9,
     "did you mean ANALYZE?"),
    ("EXPLAIN VERBOSE ANALYZE SELECT 1", "ANALYZE comes right after EXPLAIN", 1, 17,
     "EXPLAIN ANALYZE [VERBOSE]"),
    ("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1", "not closed", 1, 51, "END"),
    ("EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nSELECT 2;\nEND",
     "only INSERT statements", 3, 1, None),
    ("BEGIN STATEMENT SET;\nEND;", "at least one INSERT", 1, 1, None),
]
# fmt: on


@pytest.mark.parametrize(("script", "message", "line", "column", "hint"), CASES)
def test_error(script: str, message: str, line: int, column: int, hint: str | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse_script(script)
    err = caught.value
    assert message in err.message
    assert err.span is not None
    assert (err.span.line, err.span.column) == (line, column), str(err)
    if hint is not None:
        assert err.hint is not None and hint in err.hint, str(err)
    assert err.sql == script


def test_error_shows_the_line_with_a_caret() -> None:
    with pytest.raises(ParseError) as caught:
        parse_script("SHOW TABLES;\nSELECT a FORM t;")
    assert str(caught.value) == (
        "syntax error at line 2, column 10: unexpected 'FORM'\n"
        "  2 | SELECT a FORM t;\n"
        "    |          ^^^^\n"
        "hint: did you mean FROM?"
    )


@pytest.mark.parametrize(
    "script",
    ["CRATE TABLE t (a INT)", "SELECT a FORM t", "CREATE TABLE t (a BIGNT)", "SELECT 'x"],
)
def test_errors_hide_lark_and_sqlglot(script: str) -> None:
    with pytest.raises(StreamSQLError) as caught:
        parse_script(script)
    err = caught.value
    assert type(err) is ParseError
    assert err.__cause__ is None and err.__suppress_context__
