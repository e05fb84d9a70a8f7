"""Positions: sqlglot nodes, columns, options and statements point into the whole script."""

from __future__ import annotations

from sqlglot import exp

from streamsql.errors import Span
from streamsql.parser import parse_script
from streamsql.parser.ast import CreateTable, Insert, Query, StatementSet
from streamsql.parser.spans import span_of

SCRIPT = """\
-- two statements, the second one over three lines
CREATE TABLE bid (auction BIGINT, price DECIMAL(10, 2)) WITH ('connector' = 'nexmark');
SELECT auction,
       `price` * 2 AS doubled
  FROM bid WHERE price > 10;
"""


def _identifier(tree: exp.Expression, name: str) -> exp.Identifier:
    return next(i for i in tree.find_all(exp.Identifier) if i.name == name)


def test_identifier_in_second_statement_points_at_its_script_line() -> None:
    query = parse_script(SCRIPT)[1]
    assert isinstance(query, Query)
    price = SCRIPT.index("`price`")
    assert span_of(_identifier(query.tree, "price")) == Span(4, 8, price, price + 7)
    bid = SCRIPT.index("bid WHERE")
    assert span_of(_identifier(query.tree, "bid")) == Span(5, 8, bid, bid + 3)
    doubled = SCRIPT.index("doubled")
    assert span_of(_identifier(query.tree, "doubled")) == Span(4, 23, doubled, doubled + 7)


def test_sqlglot_meta_is_shifted_to_the_script() -> None:
    query = parse_script(SCRIPT)[1]
    meta = _identifier(query.tree, "auction").meta
    # sqlglot's convention: line and column of the token's last character, end inclusive
    start = SCRIPT.index("auction,")
    assert meta == {"line": 3, "col": 14, "start": start, "end": start + 6}
    assert SCRIPT[meta["start"] : meta["end"] + 1] == "auction"


def test_statement_spans_and_text() -> None:
    create, query = parse_script(SCRIPT)
    start, end = SCRIPT.index("CREATE"), SCRIPT.index(";\nSELECT")
    assert create.span == Span(2, 1, start, end)
    assert create.text == SCRIPT[start:end] and create.text.endswith("'nexmark')")
    assert query.span is not None and (query.span.line, query.span.column) == (3, 1)
    assert query.text.startswith("SELECT auction,") and query.text.endswith("price > 10")


def test_column_type_and_option_spans() -> None:
    create = parse_script(SCRIPT)[0]
    assert isinstance(create, CreateTable)
    auction, price = create.columns
    assert (auction.span.line, auction.span.column) == (2, 19)
    assert price.type.span is not None
    assert SCRIPT[price.type.span.start : price.type.span.end] == "DECIMAL(10, 2)"
    (option,) = create.options
    assert option.span is not None
    assert SCRIPT[option.span.start : option.span.end] == "'connector'"


def test_computed_column_and_watermark_positions() -> None:
    script = (
        "SHOW TABLES;\n"
        "CREATE TABLE t (\n"
        "  ms BIGINT,\n"
        "  ts AS TO_TIMESTAMP_LTZ(ms, 3) COMMENT 'event time',\n"
        "  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND\n"
        ")"
    )
    create = parse_script(script)[1]
    assert isinstance(create, CreateTable)
    computed = create.columns[1]
    assert computed.comment == "event time"
    assert (computed.span.line, computed.span.column) == (4, 3)
    ms = script.index("ms, 3")
    assert span_of(_identifier(computed.expr, "ms")) == Span(4, 26, ms, ms + 2)
    assert create.watermark is not None
    span = span_of(create.watermark.expr)
    assert span is not None and (span.line, span.column) == (5, 23)
    # sqlglot keeps no position for the unit keyword, so the span ends at the literal
    assert script[span.start : span.end] == "ts - INTERVAL '5'"


def test_statement_set_inserts_have_their_own_spans() -> None:
    script = (
        "EXECUTE STATEMENT SET\nBEGIN\n"
        "  INSERT INTO a SELECT x FROM t;\n"
        "  INSERT INTO b SELECT y FROM t;\n"
        "END;"
    )
    (stmt,) = parse_script(script)
    assert isinstance(stmt, StatementSet)
    first, second = stmt.inserts
    assert isinstance(second, Insert)
    assert (first.span.line, first.span.column) == (3, 3)
    assert second.text == "INSERT INTO b SELECT y FROM t"
    y = script.index("y FROM")
    assert span_of(_identifier(second.query.tree, "y")) == Span(4, 24, y, y + 1)


def test_crlf_and_tabs_keep_offsets_exact() -> None:
    script = "SHOW TABLES;\r\n\tSELECT\tx FROM t;"
    query = parse_script(script)[1]
    span = span_of(_identifier(query.tree, "x"))
    assert span is not None and script[span.start : span.end] == "x"
    assert span.line == 2
