"""RisingWave's EMIT ON WINDOW CLOSE: accepted after a windowed query (our windows already
emit once, at close), refused where it cannot hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import streamsql
from streamsql.errors import PlanError
from streamsql.parser import parse_script
from streamsql.parser.dialect import to_sql

BIDS = Path(__file__).resolve().parents[2] / "queries" / "data" / "bids.csv"
DDL = f"""CREATE TABLE bids (auction BIGINT, bidder BIGINT, price DECIMAL(10, 2),
    channel STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{BIDS}', 'format' = 'csv');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
"""
WINDOWED = (
    "SELECT window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), "
    "INTERVAL '1' MINUTE)) GROUP BY window_start, window_end"
)


@pytest.fixture
def session():
    s = streamsql.connect()
    s.execute(DDL)
    return s


def test_the_clause_is_parsed_off_the_query_in_any_case_and_spacing():
    (query,) = parse_script(WINDOWED + "\n  emit ON  window\tClose;")
    assert query.emit_on_window_close
    assert query.emit_span is not None and query.emit_span.line == 2
    assert "EMIT" not in to_sql(query.tree).upper()
    (insert,) = parse_script(f"INSERT INTO out {WINDOWED} EMIT ON WINDOW CLOSE")
    assert insert.query.emit_on_window_close
    (plain,) = parse_script(WINDOWED)
    assert not plain.emit_on_window_close


def test_a_window_query_gives_the_same_rows_with_the_clause(session):
    with_clause = session.query(WINDOWED + " EMIT ON WINDOW CLOSE")
    assert with_clause.equals(session.query(WINDOWED))
    assert with_clause.num_rows > 0
    result = session.execute(f"INSERT INTO out {WINDOWED} EMIT ON WINDOW CLOSE")
    assert result.rows_read == 3000


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT auction FROM bids EMIT ON WINDOW CLOSE", "needs a window aggregation"),
        (
            "SELECT auction, COUNT(*) FROM bids GROUP BY auction EMIT ON WINDOW CLOSE",
            "needs a window aggregation",
        ),
    ],
)
def test_the_clause_is_refused_where_results_are_not_per_window(session, sql, message):
    with pytest.raises(PlanError) as info:
        session.query(sql)
    assert message in info.value.message
    assert info.value.span is not None
    assert info.value.span.column == sql.index("EMIT") + 1
