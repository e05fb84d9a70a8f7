"""Oracle tests for joins and UNION ALL: a bounded streaming run (its changelog applied, for
updating joins) equals DuckDB's batch join on the same files, at every parallelism and
batch size; outer joins' changelogs are consistent; interval- and window-join state stays
bounded on a long input.
"""

from __future__ import annotations

import pytest

import streamsql
from streamsql import duck
from tests.changelog_check import check_changelog
from tests.oracle.data import DDL_COLUMNS
from tests.oracle.join_data import (
    AUCTIONS_DDL,
    DIM_DDL,
    PERSONS_DDL,
    RATES_DDL,
    write_join_dataset,
)
from tests.oracle.test_oracle import D_TUMBLE, _rows

PARALLELISM = (1, 2, 4)
BATCH_SIZES = (1, 7, 65536)

BIDS_DDL = DDL_COLUMNS.replace("late BOOLEAN,", "late BOOLEAN, pt AS PROCTIME(),")
TUMBLE = "TABLE(TUMBLE(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
WEB = "(SELECT * FROM " + TUMBLE.format(t="bids") + " WHERE channel = 'web')"
APP = "(SELECT * FROM " + TUMBLE.format(t="bids") + " WHERE channel = 'app')"
D_WEB = f"(SELECT * FROM {D_TUMBLE} WHERE channel = 'web')"
D_APP = f"(SELECT * FROM {D_TUMBLE} WHERE channel = 'app')"
PER_WINDOW = (
    "(SELECT window_start, window_end, auction, {agg} AS v FROM {src} "
    "GROUP BY window_start, window_end, auction)"
)


def _same(sql: str) -> tuple[str, str]:
    """A query both engines spell the same way."""
    return sql, sql


CASES: dict[str, tuple[str, str]] = {
    # -- regular joins ----------------------------------------------------------------------
    "inner_q20_shape": _same(
        "SELECT b.id, b.auction, b.price, a.seller, a.category FROM bids b "
        "JOIN auctions a ON b.auction = a.id WHERE a.category = 10"
    ),
    "inner_residual": _same(
        "SELECT b.id, a.seller, a.reserve FROM bids b JOIN auctions a "
        "ON b.auction = a.id AND b.price > a.reserve"
    ),
    "left_residual": _same(
        "SELECT b.id, b.price, a.seller, a.reserve FROM bids b LEFT JOIN auctions a "
        "ON b.auction = a.id AND b.price > a.reserve + 400"
    ),
    "right_outer": _same(
        "SELECT b.id, a.id AS aid, a.seller FROM bids b RIGHT JOIN auctions a "
        "ON b.auction = a.id AND b.bidder = a.seller"
    ),
    "full_outer": _same(
        "SELECT b.id, b.bidder, a.id AS aid, a.seller FROM bids b FULL JOIN auctions a "
        "ON b.auction = a.id AND b.bidder = a.seller"
    ),
    "q3_shape": _same(
        "SELECT p.name, p.state, a.id FROM auctions a JOIN persons p ON a.seller = p.id "
        "WHERE a.category = 10 AND (p.state = 'OR' OR p.state = 'ID' OR p.state = 'CA')"
    ),
    "multi_way": _same(
        "SELECT b.id, a.seller, p.name FROM bids b JOIN auctions a ON b.auction = a.id "
        "LEFT JOIN persons p ON a.seller = p.id AND p.state <> 'WA' WHERE b.price > 600"
    ),
    "expression_keys": _same(
        "SELECT b.id, a.id AS aid FROM bids b JOIN auctions a "
        "ON b.auction + 1 = a.id + 1 AND CAST(b.bidder AS INT) = a.category"
    ),
    "join_then_aggregate": _same(
        "SELECT a.seller, COUNT(*) AS n, MAX(b.price) AS top FROM bids b "
        "JOIN auctions a ON b.auction = a.id GROUP BY a.seller"
    ),
    "q7_highest_bid": (
        "SELECT b.auction, b.price, b.bidder, b.ts FROM bids b JOIN (SELECT MAX(price) AS "
        "maxprice, window_end AS wend FROM " + TUMBLE.format(t="bids") + " GROUP BY "
        "window_start, window_end) m ON b.price = m.maxprice "
        "WHERE b.ts >= m.wend - INTERVAL '10' SECOND AND b.ts < m.wend",
        "SELECT b.auction, b.price, b.bidder, b.ts FROM bids b JOIN (SELECT MAX(price) AS "
        f"maxprice, window_end AS wend FROM {D_TUMBLE} GROUP BY window_start, window_end) m "
        "ON b.price = m.maxprice "
        "WHERE b.ts >= m.wend - INTERVAL '10' SECOND AND b.ts < m.wend",
    ),
    "q5_hot_items": (
        "SELECT ab.auction, ab.v FROM "
        + PER_WINDOW.format(agg="COUNT(*)", src=TUMBLE.format(t="bids"))
        + " ab JOIN (SELECT MAX(v) AS maxn, window_start AS s, window_end AS e FROM "
        + PER_WINDOW.format(agg="COUNT(*)", src=TUMBLE.format(t="bids"))
        + " c GROUP BY window_start, window_end) mx "
        "ON ab.window_start = mx.s AND ab.window_end = mx.e AND ab.v >= mx.maxn",
        "SELECT ab.auction, ab.v FROM "
        + PER_WINDOW.format(agg="COUNT(*)", src=D_TUMBLE)
        + " ab JOIN (SELECT MAX(v) AS maxn, window_start AS s, window_end AS e FROM "
        + PER_WINDOW.format(agg="COUNT(*)", src=D_TUMBLE)
        + " c GROUP BY window_start, window_end) mx "
        "ON ab.window_start = mx.s AND ab.window_end = mx.e AND ab.v >= mx.maxn",
    ),
    # -- interval joins ---------------------------------------------------------------------
    "interval_self": _same(
        "SELECT b1.id, b2.id AS id2 FROM bids b1 JOIN bids b2 ON b1.auction = b2.auction "
        "AND b2.ts BETWEEN b1.ts - INTERVAL '1' SECOND AND b1.ts + INTERVAL '1' SECOND "
        "WHERE b1.id < b2.id"
    ),
    "interval_left": _same(
        "SELECT b.id, a.id AS aid, a.seller FROM bids b LEFT JOIN auctions a "
        "ON b.auction = a.id AND a.ts BETWEEN b.ts - INTERVAL '3' SECOND AND b.ts"
    ),
    "interval_full_residual": _same(
        "SELECT b.id, a.id AS aid FROM bids b FULL JOIN auctions a ON b.auction = a.id "
        "AND a.ts >= b.ts - INTERVAL '2' SECOND AND a.ts < b.ts + INTERVAL '4' SECOND "
        "AND b.price > a.reserve"
    ),
    # -- window joins -----------------------------------------------------------------------
    "window_inner_rows": (
        f"SELECT l.id, r.id AS rid, l.window_start FROM {WEB} l JOIN {APP} r "
        "ON l.auction = r.auction AND l.window_start = r.window_start "
        "AND l.window_end = r.window_end",
        f"SELECT l.id, r.id AS rid, l.window_start FROM {D_WEB} l JOIN {D_APP} r "
        "ON l.auction = r.auction AND l.window_start = r.window_start "
        "AND l.window_end = r.window_end",
    ),
    "window_full_aggregates": (
        "SELECT l.window_start, l.auction, l.v AS n, r.window_start AS rs, r.auction AS ra, "
        "r.v AS top FROM "
        + PER_WINDOW.format(agg="COUNT(*)", src=WEB)
        + " l FULL JOIN "
        + PER_WINDOW.format(agg="MAX(price)", src=APP)
        + " r ON l.window_start = r.window_start AND l.window_end = r.window_end "
        "AND l.auction = r.auction",
        "SELECT l.window_start, l.auction, l.v AS n, r.window_start AS rs, r.auction AS ra, "
        "r.v AS top FROM "
        + PER_WINDOW.format(agg="COUNT(*)", src=D_WEB)
        + " l FULL JOIN "
        + PER_WINDOW.format(agg="MAX(price)", src=D_APP)
        + " r ON l.window_start = r.window_start AND l.window_end = r.window_end "
        "AND l.auction = r.auction",
    ),
    # -- temporal and lookup joins ----------------------------------------------------------
    "temporal_inner": (
        "SELECT b.id, r.rate FROM bids b JOIN rates FOR SYSTEM_TIME AS OF b.ts AS r "
        "ON b.auction = r.auction",
        "SELECT b.id, r.rate FROM bids b ASOF JOIN rates r "
        "ON b.auction = r.auction AND b.ts >= r.ts",
    ),
    "temporal_left": (
        "SELECT b.id, r.rate, r.ts FROM bids b LEFT JOIN rates FOR SYSTEM_TIME AS OF b.ts AS r "
        "ON b.auction = r.auction",
        "SELECT b.id, r.rate, r.ts FROM bids b ASOF LEFT JOIN rates r "
        "ON b.auction = r.auction AND b.ts >= r.ts",
    ),
    "lookup_left": (
        "SELECT b.id, d.label, d.weight FROM bids b LEFT JOIN dim FOR SYSTEM_TIME AS OF b.pt "
        "AS d ON b.auction = d.id",
        "SELECT b.id, d.label, d.weight FROM bids b LEFT JOIN dim d ON b.auction = d.id",
    ),
    "lookup_inner_residual": (
        "SELECT b.id, d.label FROM bids b JOIN dim FOR SYSTEM_TIME AS OF b.pt AS d "
        "ON b.auction = d.id AND b.price > d.weight * 100",
        "SELECT b.id, d.label FROM bids b JOIN dim d "
        "ON b.auction = d.id AND b.price > d.weight * 100",
    ),
    # -- UNION ALL --------------------------------------------------------------------------
    "union_all_windowed": (
        "WITH u AS (SELECT auction AS k, ts FROM bids UNION ALL SELECT id, ts FROM auctions) "
        "SELECT window_start, k, COUNT(*) AS n FROM " + TUMBLE.format(t="u") + " "
        "GROUP BY window_start, window_end, k",
        "WITH u AS (SELECT auction AS k, ts FROM bids UNION ALL SELECT id, ts FROM auctions) "
        "SELECT time_bucket(INTERVAL 10 SECOND, ts) AS window_start, k, COUNT(*) FROM u "
        "GROUP BY ALL",
    ),
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_join_dataset(tmp_path_factory.mktemp("joins"))


def connect(paths, parallelism: int = 1, batch_size: int = 65536) -> streamsql.Session:
    session = streamsql.connect(
        settings={"parallelism.default": str(parallelism), "execution.batch-size": str(batch_size)}
    )
    for name, ddl in (
        ("bids", BIDS_DDL),
        ("auctions", AUCTIONS_DDL),
        ("persons", PERSONS_DDL),
        ("rates", RATES_DDL),
        ("dim", DIM_DDL),
    ):
        session.execute(
            f"CREATE TABLE {name} ({ddl}) WITH ('connector' = 'filesystem', "
            f"'path' = '{paths[name]}', 'format' = 'parquet')"
        )
    return session


def expected(paths, sql: str) -> list[tuple]:
    con = duck.connect()
    for name in ("bids", "auctions", "persons", "rates", "dim"):
        duck.run(
            con, f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{paths[name]}/*.parquet')"
        )
    table = duck.query_arrow(con, sql)
    return _rows([c.to_pylist() for c in table.columns])


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", sorted(CASES))
def test_join_matches_duckdb(paths, case, parallelism, batch_size):
    ours, theirs = CASES[case]
    session = connect(paths, parallelism, batch_size)
    table = session.query(ours)
    got = _rows([c.to_pylist() for c in table.columns])
    want = expected(paths, theirs)
    assert len(want) > 0
    assert got == want
    assert session.last_result.late_rows_dropped == 0


@pytest.mark.parametrize("batch_size", (1, 65536))
@pytest.mark.parametrize("case", ["left_residual", "right_outer", "full_outer", "multi_way"])
def test_outer_join_changelogs_are_consistent(paths, case, batch_size):
    ours, theirs = CASES[case]
    session = connect(paths, 2, batch_size)
    batches = list(session.sql(ours).stream())
    live = check_changelog(batches)
    rows = [tuple(v for _, v in key) for key, n in live.items() for _ in range(n)]
    assert _rows(list(zip(*rows, strict=True))) == expected(paths, theirs)


@pytest.mark.parametrize(
    ("case", "strategy"),
    [
        ("inner_residual", "regular"),
        ("interval_left", "interval("),
        ("window_inner_rows", "window("),
        ("temporal_inner", "temporal("),
    ],
)
def test_explain_names_the_strategy_and_the_fan_in(paths, case, strategy):
    text = connect(paths, 2).explain(CASES[case][0])
    assert f"strategy=[{strategy}" in text
    assert "fan-in: 2 inputs" in text
    assert "(left)" in text and "(right)" in text


@pytest.fixture(scope="module")
def long_paths(tmp_path_factory):
    return write_join_dataset(tmp_path_factory.mktemp("long_joins"), rows=20_000)


@pytest.mark.parametrize(
    "case", ["interval_self", "interval_left", "window_inner_rows", "temporal_inner"]
)
def test_join_state_stays_bounded_on_a_long_input(long_paths, case):
    """20,000 bids over 45 minutes of event time: the watermark empties state as it goes.

    The deterministic driver reads the two sources in step; on threads each reads at its
    own pace and the join holds what the faster one read ahead (no watermark alignment).
    """
    session = connect(long_paths, 2, 512)
    session.execute("SET 'execution.runtime' = 'deterministic'")
    table = session.query(CASES[case][0])
    assert table.num_rows > 0
    peaks = [c.get("join_state_rows_peak", 0) for c in session.last_result.counters()]
    assert 0 < max(peaks) < 1_000, peaks  # a few seconds of rows, not 20,000
