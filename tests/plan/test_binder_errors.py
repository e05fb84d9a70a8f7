"""Bind and plan errors: message, position and hint, as a user sees them."""

from __future__ import annotations

import pytest

import streamsql
from streamsql.errors import BindError, ConfigError, ParseError, PlanError, StreamSQLError

DDL = """CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, ts TIMESTAMP(3),
    plain_ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE out (a BIGINT, b BIGINT) WITH ('connector' = 'blackhole');
CREATE VIEW per_auction AS SELECT auction, MAX(ts) AS ts FROM bids GROUP BY auction;
"""
TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"


@pytest.fixture
def session():
    s = streamsql.connect()
    s.execute(DDL)
    return s


CASES = [
    # (sql, error type, message fragment, line, column, hint fragment)
    ("SELECT pirce FROM bids", BindError, "unknown column 'pirce'", 1, 8, "'price'"),
    ("SELECT auction\nFROM bidz", BindError, "unknown table or view 'bidz'", 2, 6, "'bids'"),
    ("SELECT b.price FROM bids AS a", BindError, "unknown table 'b'", 1, 8, "names: a"),
    (
        "SELECT * FROM TABLE(TUMBLE(TABLE per_auction, DESCRIPTOR(ts), INTERVAL '1' MINUTE))",
        PlanError,
        "TUMBLE needs an append-only input",
        1,
        34,
        "window the append-only source",
    ),
    (
        f"SELECT window_start, bidder, COUNT(*) FROM {TUMBLE} GROUP BY window_start, window_end",
        BindError,
        "column 'bidder' must appear in GROUP BY",
        1,
        22,
        "MAX(bidder)",
    ),
    (
        "SELECT * FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(plain_ts), INTERVAL '1' MINUTE))",
        BindError,
        "'plain_ts' is not a time attribute",
        1,
        51,
        "time attribute of this input is 'ts'",
    ),
    (
        "SELECT * FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '7' SECOND, "
        "INTERVAL '10' SECOND))",
        PlanError,
        "whole multiple of its slide",
        1,
        None,
        None,
    ),
    (
        "SELECT * FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts)))",
        BindError,
        "missing its SIZE argument",
        1,
        None,
        "TUMBLE(TABLE t, DESCRIPTOR(ts), size)",
    ),
    ("SELECT auction FROM bids WHERE COUNT(*) > 1", BindError, "not allowed here", 1, 32, None),
    (
        "SELECT SUM(channel) AS s FROM " + TUMBLE + " GROUP BY window_start, window_end",
        BindError,
        "SUM needs a numeric argument, got STRING",
        1,
        8,
        None,
    ),
    (
        "SELECT a.auction FROM bids a FULL JOIN bids FOR SYSTEM_TIME AS OF a.ts AS b "
        "ON a.auction = b.auction",
        PlanError,
        "FULL JOIN ... FOR SYSTEM_TIME AS OF is not supported",
        1,
        None,
        None,
    ),
    ("SELECT auction FROM bids ORDER BY auction", PlanError, "ORDER BY", 1, None, None),
    ("SELECT auction FROM bids WHERE price", BindError, "BOOLEAN", 1, None, None),
    ("SELECT upper(price, 1) FROM bids", ParseError, "number of provided arguments", 1, 22, None),
]


@pytest.mark.parametrize(("sql", "kind", "message", "line", "column", "hint"), CASES)
def test_error_points_at_the_sql(session, sql, kind, message, line, column, hint):
    with pytest.raises(kind) as info:
        session.query(sql)
    err = info.value
    assert message in err.message
    assert err.span is not None and err.span.line == line
    if column is not None:
        assert err.span.column == column
    if hint is not None:
        assert hint in (err.hint or "")
    text = str(err)
    assert "^" in text and f"line {line}" in text


def test_insert_arity_mismatch(session):
    with pytest.raises(BindError, match="needs 2 columns"):
        session.execute("INSERT INTO out SELECT auction FROM bids")


def test_insert_incompatible_type(session):
    with pytest.raises(BindError, match=r"column 'channel' is STRING but out\.b is BIGINT"):
        session.execute("INSERT INTO out SELECT auction, channel FROM bids")


def test_unknown_connector_lists_the_known_ones(session):
    with pytest.raises(ConfigError) as info:
        session.execute("CREATE TABLE x (a INT) WITH ('connector' = 'kafak')")
    assert "unknown connector 'kafak'" in info.value.message
    assert info.value.span is not None and info.value.span.line == 1


def test_unknown_option_points_at_it(session):
    with pytest.raises(ConfigError) as info:
        session.execute(
            "CREATE TABLE x (a INT) WITH (\n  'connector' = 'datagen',\n  'rows-per-secnd' = '5')"
        )
    err = info.value
    assert "rows-per-secnd" in err.message
    assert err.span is not None and err.span.line == 3
    assert "rows-per-second" in (err.hint or "")


def test_missing_connector_option(session):
    with pytest.raises(ConfigError, match="no 'connector' option"):
        session.execute("CREATE TABLE x (a INT) WITH ('path' = '/tmp')")


def test_watermark_on_non_timestamp(session):
    with pytest.raises(BindError, match="it must be a TIMESTAMP"):
        session.execute(
            "CREATE TABLE x (a BIGINT, WATERMARK FOR a AS a - 1) WITH ('connector' = 'datagen')"
        )


def test_unknown_setting_suggests(session):
    with pytest.raises(ConfigError) as info:
        session.execute("SET 'parallelism.defualt' = '2'")
    assert "parallelism.default" in (info.value.hint or "")


def test_unbounded_query_is_refused_by_query(session):
    session.execute("CREATE TABLE forever (a INT) WITH ('connector' = 'datagen')")
    with pytest.raises(PlanError, match="unbounded"):
        session.query("SELECT a FROM forever")


def test_every_error_is_a_streamsql_error(session):
    for sql, *_ in CASES:
        with pytest.raises(StreamSQLError):
            session.query(sql)


def test_updates_into_an_append_only_sink_are_refused(session, tmp_path):
    session.execute(
        f"CREATE TABLE files (a BIGINT, n BIGINT) WITH ('connector' = 'filesystem', "
        f"'path' = '{tmp_path}', 'format' = 'csv')"
    )
    with pytest.raises(PlanError) as info:
        session.execute("INSERT INTO files SELECT auction, COUNT(*) FROM bids GROUP BY auction")
    err = info.value
    assert "produces updates, from Aggregate(groupBy=[auction]" in err.message
    assert "'filesystem' can only append rows" in err.message
    assert "PRIMARY KEY" in err.hint and "MATERIALIZED VIEW" in err.hint and "TUMBLE" in err.hint
    assert list(tmp_path.iterdir()) == []  # refused before anything ran


SESSION = "TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(ts), INTERVAL '5' SECOND))"
SESSION_CASES = [
    (f"SELECT * FROM {SESSION}", BindError, "a SESSION window is known only when it closes"),
    (
        f"SELECT bidder, COUNT(*) FROM {SESSION} GROUP BY bidder",
        BindError,
        "a SESSION window is known only when it closes",
    ),
    (
        f"SELECT window_start, COUNT(*) FROM {SESSION} GROUP BY window_start, window_end",
        BindError,
        "must group by its PARTITION BY column 'bidder'",
    ),
    (
        f"SELECT window_start, bidder, COUNT(DISTINCT auction) FROM {SESSION} "
        "GROUP BY window_start, window_end, bidder",
        BindError,
        "DISTINCT aggregates over SESSION windows are not supported yet",
    ),
    (
        "SELECT * FROM TABLE(SESSION(TABLE bids PARTITION BY bidder + 1, DESCRIPTOR(ts), "
        "INTERVAL '5' SECOND))",
        BindError,
        "SESSION is partitioned by columns",
    ),
    (
        "SELECT * FROM TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(ts)))",
        BindError,
        "SESSION is missing its GAP argument",
    ),
    (
        "SELECT * FROM TABLE(TUMBLE(TABLE bids PARTITION BY bidder, DESCRIPTOR(ts), "
        "INTERVAL '5' SECOND))",
        BindError,
        "TUMBLE does not take PARTITION BY",
    ),
    (
        "SELECT * FROM TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(ts), "
        "INTERVAL '0' SECOND))",
        BindError,
        "the GAP of SESSION must be positive",
    ),
]


@pytest.mark.parametrize(("sql", "kind", "message"), SESSION_CASES)
def test_session_window_errors_point_at_the_sql(session, sql, kind, message):
    with pytest.raises(kind) as info:
        session.query(sql)
    assert message in info.value.message
    assert info.value.span is not None and info.value.span.line == 1
    assert "^" in str(info.value)


def test_session_window_with_rule_switched_off_says_so():
    s = streamsql.connect(settings={"table.optimizer.disabled-rules": "fuse_window_assignment"})
    s.execute(DDL)
    with pytest.raises(PlanError) as info:
        s.query(
            f"SELECT window_start, bidder, COUNT(*) FROM {SESSION} "
            "GROUP BY window_start, window_end, bidder"
        )
    assert "SESSION windows can only be aggregated" in info.value.message
    assert "fuse_window_assignment" in (info.value.hint or "")
