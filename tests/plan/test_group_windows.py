"""Legacy group windows (GROUP BY TUMBLE(ts, size), TUMBLE_START(...)): the rewrite into the
window TVF form, its EXPLAIN, and every error it raises, with its position.
"""

from __future__ import annotations

import pytest

import streamsql
from streamsql.errors import BindError, PlanError
from streamsql.parser import parse_statement
from streamsql.parser.dialect import to_sql
from streamsql.plan.group_windows import rewrite_group_window

DDL = """CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, ts TIMESTAMP(3),
    plain_ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
CREATE VIEW per_auction AS SELECT auction, MAX(ts) AS ts FROM bids GROUP BY auction;
"""
S10 = "INTERVAL '10' SECOND"
S2 = "INTERVAL '2' SECOND"
TVF_TUMBLE = f"TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), {S10}))"


@pytest.fixture
def session():
    s = streamsql.connect()
    s.execute(DDL)
    return s


def rewritten(sql: str) -> str:
    return to_sql(rewrite_group_window(parse_statement(sql).tree))


REWRITES = {
    "tumble_with_key": (
        f"SELECT TUMBLE_START(ts, {S10}) AS ws, TUMBLE_END(ts, {S10}), auction, COUNT(*) "
        f"FROM bids GROUP BY TUMBLE(ts, {S10}), auction",
        f"SELECT window_start AS ws, window_end AS `EXPR$1`, auction, COUNT(*) "
        f"FROM {TVF_TUMBLE} GROUP BY window_start, window_end, auction",
    ),
    "rowtime_and_key_first": (
        f"SELECT auction, TUMBLE_ROWTIME(ts, {S10}) AS wt FROM bids "
        f"GROUP BY auction, TUMBLE(ts, {S10})",
        f"SELECT auction, window_time AS wt FROM {TVF_TUMBLE} "
        f"GROUP BY auction, window_start, window_end",
    ),
    "tumble_offset": (
        f"SELECT TUMBLE_START(ts, {S10}, {S2}) AS ws FROM bids GROUP BY TUMBLE(ts, {S10}, {S2})",
        f"SELECT window_start AS ws FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), {S10}, {S2})) "
        f"GROUP BY window_start, window_end",
    ),
    "hop_keeps_argument_order": (
        f"SELECT HOP_START(ts, {S2}, {S10}), HOP_END(ts, {S2}, {S10}), "
        f"HOP_ROWTIME(ts, {S2}, {S10}), COUNT(*) FROM bids GROUP BY HOP(ts, {S2}, {S10})",
        "SELECT window_start AS `EXPR$0`, window_end AS `EXPR$1`, window_time AS `EXPR$2`, "
        f"COUNT(*) FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), {S2}, {S10})) "
        "GROUP BY window_start, window_end",
    ),
    "session_partitions_by_the_other_keys": (
        "SELECT SESSION_START(ts, INTERVAL '5' SECOND) AS s, SESSION_END(ts, INTERVAL '5' "
        "SECOND) AS e, SESSION_ROWTIME(ts, INTERVAL '5' SECOND) AS t, bidder, auction, "
        "COUNT(*) FROM bids GROUP BY SESSION(ts, INTERVAL '5' SECOND), bidder, auction",
        "SELECT window_start AS s, window_end AS e, window_time AS t, bidder, auction, "
        "COUNT(*) FROM TABLE(SESSION(TABLE bids PARTITION BY (bidder, auction), "
        "DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, bidder, "
        "auction",
    ),
    "session_without_keys": (
        "SELECT COUNT(*) FROM bids GROUP BY SESSION(ts, INTERVAL '5' SECOND)",
        "SELECT COUNT(*) FROM TABLE(SESSION(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' "
        "SECOND)) GROUP BY window_start, window_end",
    ),
    "alias_kept_and_qualifiers_dropped_inside_the_tvf": (
        f"SELECT TUMBLE_END(b.ts, {S10}) AS we, b.auction FROM bids AS b "
        f"GROUP BY TUMBLE(b.ts, {S10}), b.auction",
        f"SELECT window_end AS we, b.auction FROM {TVF_TUMBLE} AS b "
        f"GROUP BY window_start, window_end, b.auction",
    ),
    "session_key_qualifier_dropped": (
        "SELECT b.bidder FROM bids b GROUP BY SESSION(b.ts, INTERVAL '5' SECOND), b.bidder",
        "SELECT b.bidder FROM TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(ts), "
        "INTERVAL '5' SECOND)) AS b GROUP BY window_start, window_end, b.bidder",
    ),
    "where_having_order_and_nested_calls": (
        f"SELECT CAST(TUMBLE_END(ts, {S10}) AS STRING) AS we, COUNT(*) AS n FROM bids "
        f"WHERE price > 10 GROUP BY TUMBLE(ts, {S10}) "
        f"HAVING TUMBLE_END(ts, {S10}) > TIMESTAMP '2020-01-01 00:00:00' "
        f"ORDER BY TUMBLE_START(ts, {S10})",
        f"SELECT CAST(window_end AS TEXT) AS we, COUNT(*) AS n FROM {TVF_TUMBLE} "
        "WHERE price > 10 GROUP BY window_start, window_end "
        "HAVING window_end > CAST('2020-01-01 00:00:00' AS TIMESTAMP) ORDER BY window_start",
    ),
    "same_window_written_differently": (
        "SELECT TUMBLE_START(ts, INTERVAL '10000' MILLISECOND) AS ws FROM bids "
        f"GROUP BY tumble(TS, {S10})",
        "SELECT window_start AS ws FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(TS), "
        f"{S10})) GROUP BY window_start, window_end",
    ),
    "subquery_becomes_a_cte": (
        f"SELECT TUMBLE_START(ts, {S10}) AS ws, COUNT(*) AS n "
        f"FROM (SELECT ts FROM bids WHERE price > 10) AS cheap GROUP BY TUMBLE(ts, {S10})",
        "WITH cheap AS (SELECT ts FROM bids WHERE price > 10) SELECT window_start AS ws, "
        f"COUNT(*) AS n FROM TABLE(TUMBLE(TABLE cheap, DESCRIPTOR(ts), {S10})) AS cheap "
        "GROUP BY window_start, window_end",
    ),
    "unnamed_subquery_after_the_query_ctes": (
        "WITH b AS (SELECT * FROM bids) SELECT COUNT(*) AS n "
        f"FROM (SELECT ts FROM b) GROUP BY TUMBLE(ts, {S10})",
        "WITH b AS (SELECT * FROM bids), `$group_window_input` AS (SELECT ts FROM b) "
        "SELECT COUNT(*) AS n FROM TABLE(TUMBLE(TABLE `$group_window_input`, "
        f"DESCRIPTOR(ts), {S10})) GROUP BY window_start, window_end",
    ),
}


@pytest.mark.parametrize("case", sorted(REWRITES))
def test_rewrite(case):
    legacy, tvf = REWRITES[case]
    assert rewritten(legacy) == tvf


def test_queries_without_group_windows_are_returned_as_they_are():
    tree = parse_statement("SELECT auction, COUNT(*) FROM bids GROUP BY auction, ts").tree
    assert rewrite_group_window(tree) is tree


def test_the_input_tree_is_not_changed():
    sql = f"SELECT TUMBLE_START(ts, {S10}) FROM bids GROUP BY TUMBLE(ts, {S10})"
    tree = parse_statement(sql).tree
    before = to_sql(tree)
    rewrite_group_window(tree)
    assert to_sql(tree) == before


def test_explain_equals_the_tvf_form(session):
    legacy = (
        f"SELECT TUMBLE_START(ts, {S10}) AS ws, TUMBLE_ROWTIME(ts, {S10}) AS wt, auction, "
        f"COUNT(*) AS n FROM bids WHERE price > 5 GROUP BY TUMBLE(ts, {S10}), auction "
        "HAVING COUNT(*) > 1"
    )
    tvf = (
        "SELECT window_start AS ws, window_time AS wt, auction, COUNT(*) AS n "
        f"FROM {TVF_TUMBLE} WHERE price > 5 GROUP BY window_start, window_end, auction "
        "HAVING COUNT(*) > 1"
    )
    plan = session.explain(legacy)
    assert "WindowAggregate(window=[TUMBLE(time_col=[ts], size=[10 s])]" in plan
    assert plan == session.explain(tvf)
    assert session.explain(f"EXPLAIN {legacy}") == session.explain(f"EXPLAIN {tvf}")


def test_explain_hop_with_offset(session):
    plan = session.explain(
        f"SELECT HOP_END(ts, {S2}, {S10}, INTERVAL '1' SECOND) AS we, COUNT(*) AS n FROM bids "
        f"GROUP BY HOP(ts, {S2}, {S10}, INTERVAL '1' SECOND)"
    )
    assert "HOP(time_col=[ts], slide=[2 s], size=[10 s], offset=[1 s])" in plan


def test_unaliased_calls_get_flink_names(session):
    handle = session.sql(
        f"SELECT TUMBLE_START(ts, {S10}), TUMBLE_END(ts, {S10}), COUNT(*) FROM bids "
        f"GROUP BY TUMBLE(ts, {S10})"
    )
    assert handle.schema.names == ["EXPR$0", "EXPR$1", "EXPR$2"]


def test_views_and_inserts_use_the_legacy_form(session):
    session.execute(
        "CREATE VIEW per_window AS SELECT TUMBLE_START(ts, INTERVAL '10' SECOND) AS ws, "
        "COUNT(*) AS n FROM bids GROUP BY TUMBLE(ts, INTERVAL '10' SECOND)"
    )
    assert "WindowAggregate" in session.explain("SELECT ws, n FROM per_window")
    plan = session.explain(
        f"INSERT INTO out SELECT TUMBLE_START(ts, {S10}), COUNT(*) FROM bids "
        f"GROUP BY TUMBLE(ts, {S10})"
    )
    assert "Sink" in plan and "WindowAggregate" in plan


def test_session_binds_to_the_session_tvf(session):
    sql = "SELECT COUNT(*) FROM bids GROUP BY SESSION(ts, INTERVAL '5' SECOND), bidder"
    plan = session.explain(sql)
    assert "window=[SESSION(partition=[" in plan and "gap=[5 s]" in plan


T10 = f"TUMBLE(ts, {S10})"
ERRORS = [
    # (sql, error type, message, line, column, hint fragment)
    (
        f"SELECT TUMBLE_START(ts, INTERVAL '5' SECOND) FROM bids GROUP BY {T10}",
        BindError,
        "TUMBLE_START(ts, INTERVAL '5' SECOND) does not match the group window "
        "TUMBLE(ts, INTERVAL '10' SECOND)",
        1,
        8,
        f"TUMBLE_START(ts, {S10})",
    ),
    (
        f"SELECT COUNT(*) FROM bids\nGROUP BY {T10}\nHAVING MAX(price) > 1 AND "
        f"TUMBLE_END(plain_ts, {S10}) > ts",
        BindError,
        f"TUMBLE_END(plain_ts, {S10}) does not match the group window {T10}",
        3,
        27,
        None,
    ),
    (
        f"SELECT HOP_END(ts, {S2}, {S10}) FROM bids GROUP BY {T10}",
        BindError,
        f"HOP_END(ts, {S2}, {S10}) does not match the group window {T10}",
        1,
        8,
        "TUMBLE_END(",
    ),
    (
        f"SELECT TUMBLE_START(ts, {S10}, {S2}) FROM bids GROUP BY {T10}",
        BindError,
        "does not match the group window",
        1,
        8,
        None,
    ),
    (
        f"SELECT auction, TUMBLE_START(ts, {S10}) FROM bids GROUP BY auction",
        BindError,
        "TUMBLE_START needs a group window: GROUP BY TUMBLE(...)",
        1,
        17,
        "TUMBLE(time_col, size[, offset])",
    ),
    (
        f"SELECT SESSION_END(ts, {S10}) FROM bids",
        BindError,
        "SESSION_END needs a group window",
        1,
        8,
        "SESSION(time_col, gap)",
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY {T10},\n  HOP(ts, {S2}, {S10})",
        BindError,
        "a GROUP BY can hold only one group window",
        2,
        3,
        "one query per size",
    ),
    (
        f"SELECT COUNT(*) FROM bids WHERE TUMBLE_START(ts, {S10}) > ts GROUP BY {T10}",
        BindError,
        "TUMBLE_START is allowed only in SELECT, HAVING and ORDER BY",
        1,
        33,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY {T10}, TUMBLE_END(ts, {S10})",
        BindError,
        "TUMBLE_END is allowed only in SELECT, HAVING and ORDER BY",
        1,
        70,
        None,
    ),
    (
        "SELECT COUNT(*) FROM bids a JOIN bids b ON a.auction = b.auction\n"
        f"GROUP BY TUMBLE(a.ts, {S10})",
        PlanError,
        "the group window TUMBLE needs one table, view or CTE in FROM",
        1,
        34,
        "CREATE VIEW",
    ),
    (
        f"SELECT COUNT(*) FROM {TVF_TUMBLE} GROUP BY {T10}",
        PlanError,
        "the group window TUMBLE needs one table, view or CTE in FROM",
        1,
        22,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY TUMBLE(ts + {S2}, {S10})",
        BindError,
        f"the time column of TUMBLE must be a column, got ts + {S2}",
        1,
        43,
        "WATERMARK",
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY TUMBLE(CAST(plain_ts AS TIMESTAMP(3)), {S10})",
        BindError,
        "the time column of TUMBLE must be a column",
        1,
        48,
        None,
    ),
    (
        "SELECT COUNT(*) FROM bids GROUP BY TUMBLE(ts)",
        BindError,
        "the group window TUMBLE takes 2 or 3 arguments, got 1",
        1,
        36,
        "TUMBLE(time_col, size[, offset])",
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY SESSION(ts, {S10}, {S2})",
        BindError,
        "the group window SESSION takes 2 arguments, got 3",
        1,
        36,
        "SESSION(time_col, gap)",
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY HOP(ts, INTERVAL '7' SECOND, {S10})",
        PlanError,
        "HOP size must be a whole multiple of its slide",
        1,
        36,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM bids b GROUP BY TUMBLE(x.ts, {S10})",
        BindError,
        "unknown table 'x' in 'x.ts'",
        1,
        45,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM bids b GROUP BY SESSION(ts, {S10}), x.bidder",
        BindError,
        "unknown table 'x' in 'x.bidder'",
        1,
        73,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM bids GROUP BY SESSION(ts, {S10}),\n  bidder % 2",
        PlanError,
        "its other GROUP BY items must be columns; got bidder % 2",
        2,
        3,
        "view or subquery",
    ),
    (
        f"SELECT TUMBLE_PROCTIME(ts, {S10}) FROM bids GROUP BY {T10}",
        PlanError,
        "TUMBLE_PROCTIME is not supported",
        1,
        8,
        "TUMBLE_ROWTIME",
    ),
    # Errors of the window TVF binding point at the legacy text too.
    (
        f"SELECT COUNT(*) FROM bids GROUP BY TUMBLE(plain_ts, {S10})",
        BindError,
        "'plain_ts' is not a time attribute",
        1,
        43,
        "time attribute of this input is 'ts'",
    ),
    (
        "SELECT COUNT(*) FROM bids GROUP BY TUMBLE(ts, 10)",
        BindError,
        "expected a constant INTERVAL",
        1,
        47,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM per_auction GROUP BY {T10}",
        PlanError,
        "TUMBLE needs an append-only input",
        1,
        22,
        None,
    ),
    (
        f"SELECT COUNT(*) FROM bidz GROUP BY {T10}",
        BindError,
        "unknown table or view 'bidz'",
        1,
        22,
        "'bids'",
    ),
    (
        f"SELECT ts, COUNT(*) FROM bids GROUP BY {T10}",
        BindError,
        "column 'ts' must appear in GROUP BY",
        1,
        8,
        None,
    ),
]


@pytest.mark.parametrize(("sql", "kind", "message", "line", "column", "hint"), ERRORS)
def test_error_points_at_the_sql(session, sql, kind, message, line, column, hint):
    with pytest.raises(kind) as info:
        session.explain(sql)
    err = info.value
    assert message in err.message
    assert err.span is not None
    assert (err.span.line, err.span.column) == (line, column)
    if hint is not None:
        assert hint in (err.hint or "")
    assert "^" in str(err)
