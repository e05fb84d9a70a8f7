"""Oracle tests: a bounded streaming run equals DuckDB's batch answer on the same files,
at every parallelism and batch size.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamsql
from streamsql import duck
from tests.oracle.data import DDL_COLUMNS, write_dataset

PARALLELISM = (1, 2, 4)
BATCH_SIZES = (1, 7, 65536)

TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
HOP = "TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))"
CUMULATE = "TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '4' SECOND, INTERVAL '12' SECOND))"

# DuckDB spellings of the same windows.
D_TUMBLE = """(SELECT *, time_bucket(INTERVAL 10 SECOND, ts) AS window_start,
    time_bucket(INTERVAL 10 SECOND, ts) + INTERVAL 10 SECOND AS window_end FROM bids)"""
D_HOP = """(SELECT b.*, time_bucket(INTERVAL 5 SECOND, ts) - k * INTERVAL 5 SECOND AS window_start,
    time_bucket(INTERVAL 5 SECOND, ts) - k * INTERVAL 5 SECOND + INTERVAL 15 SECOND AS window_end
    FROM bids b, range(3) r(k))"""
D_CUMULATE = """(SELECT b.*, time_bucket(INTERVAL 12 SECOND, ts) AS window_start,
    time_bucket(INTERVAL 12 SECOND, ts) + j * INTERVAL 4 SECOND AS window_end
    FROM bids b, range(1, 4) r(j)
    WHERE time_bucket(INTERVAL 12 SECOND, ts) + j * INTERVAL 4 SECOND > ts)"""


def session(keys: str, gap_ms: int) -> str:
    """The SESSION TVF over bids, partitioned by ``keys`` (comma-separated, may be empty)."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    by = "" if not parts else parts[0] if len(parts) == 1 else f"({', '.join(parts)})"
    partition = f" PARTITION BY {by}" if by else ""
    return f"TABLE(SESSION(TABLE bids{partition}, DESCRIPTOR(ts), INTERVAL '{gap_ms}' MILLISECOND))"


def d_session(keys: str, gap_ms: int, where: str = "") -> str:
    """DuckDB: each bid (``where`` it holds) with the [start, end) of its session: a row
    more than ``gap_ms`` after the previous one of its partition starts a new session.
    """
    by = f"PARTITION BY {keys} " if keys else ""
    per_session = f"PARTITION BY sid, {keys}" if keys else "PARTITION BY sid"
    rows = f"(SELECT * FROM bids WHERE {where})" if where else "bids"
    return f"""(WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER ({by}ORDER BY ts, id)
        <= INTERVAL {gap_ms} MILLISECOND THEN 0 ELSE 1 END AS brk FROM {rows}),
    g AS (SELECT *, sum(brk) OVER ({by}ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS sid
        FROM o)
    SELECT *, min(ts) OVER ({per_session}) AS window_start,
        max(ts) OVER ({per_session}) + INTERVAL {gap_ms} MILLISECOND AS window_end FROM g)"""


CASES = {
    "filter_project": (
        "SELECT auction, price * 2 AS p2, UPPER(channel) AS ch, amount / 2 AS half FROM bids "
        "WHERE price > 500 AND channel IS NOT NULL",
        "SELECT auction, price * 2, UPPER(channel), amount / 2 FROM bids "
        "WHERE price > 500 AND channel IS NOT NULL",
    ),
    "expressions": (
        "SELECT bidder, CASE WHEN price >= 900 THEN 'high' WHEN price >= 300 THEN 'mid' "
        "ELSE 'low' END AS band, COALESCE(channel, 'none') AS ch, channel LIKE 'a%' AS a_chan, "
        "price BETWEEN 100 AND 200 AS mid, auction IN (1, 3, 5) AS odd FROM bids",
        "SELECT bidder, CASE WHEN price >= 900 THEN 'high' WHEN price >= 300 THEN 'mid' "
        "ELSE 'low' END, COALESCE(channel, 'none'), channel LIKE 'a%', "
        "price BETWEEN 100 AND 200, auction IN (1, 3, 5) FROM bids",
    ),
    "tumble_count_max": (
        f"SELECT window_start, window_end, auction, COUNT(*) AS n, MAX(price) AS top "
        f"FROM {TUMBLE} GROUP BY window_start, window_end, auction",
        f"SELECT window_start, window_end, auction, COUNT(*), MAX(price) FROM {D_TUMBLE} "
        f"GROUP BY ALL",
    ),
    "tumble_several_keys": (
        f"SELECT window_start, auction, channel, SUM(price) AS s, MIN(amount) AS lo, "
        f"AVG(amount) AS av, COUNT(price) AS cp FROM {TUMBLE} "
        f"GROUP BY window_start, window_end, auction, channel",
        f"SELECT window_start, auction, channel, SUM(price), MIN(amount), AVG(amount), "
        f"COUNT(price) FROM {D_TUMBLE} GROUP BY window_start, window_end, auction, channel",
    ),
    "tumble_filter_clause": (
        f"SELECT window_end, auction, COUNT(*) FILTER (WHERE price > 500) AS big, "
        f"SUM(price) FILTER (WHERE channel = 'web') AS web, MAX(amount) FILTER "
        f"(WHERE bidder < 10) AS few FROM {TUMBLE} GROUP BY window_start, window_end, auction",
        f"SELECT window_end, auction, COUNT(*) FILTER (WHERE price > 500), "
        f"SUM(price) FILTER (WHERE channel = 'web'), MAX(amount) FILTER (WHERE bidder < 10) "
        f"FROM {D_TUMBLE} GROUP BY window_start, window_end, auction",
    ),
    "tumble_count_distinct": (
        f"SELECT window_start, channel, COUNT(DISTINCT bidder) AS bidders, "
        f"COUNT(DISTINCT auction) FILTER (WHERE price > 300) AS rich, COUNT(*) AS n "
        f"FROM {TUMBLE} GROUP BY window_start, window_end, channel",
        f"SELECT window_start, channel, COUNT(DISTINCT bidder), "
        f"COUNT(DISTINCT auction) FILTER (WHERE price > 300), COUNT(*) "
        f"FROM {D_TUMBLE} GROUP BY window_start, window_end, channel",
    ),
    "hop_sum": (
        f"SELECT window_start, window_end, auction, SUM(price) AS s, COUNT(*) AS n "
        f"FROM {HOP} GROUP BY window_start, window_end, auction",
        f"SELECT window_start, window_end, auction, SUM(price), COUNT(*) FROM {D_HOP} GROUP BY ALL",
    ),
    "cumulate_count": (
        f"SELECT window_start, window_end, channel, COUNT(*) AS n, MAX(price) AS top "
        f"FROM {CUMULATE} GROUP BY window_start, window_end, channel",
        f"SELECT window_start, window_end, channel, COUNT(*), MAX(price) FROM {D_CUMULATE} "
        f"GROUP BY ALL",
    ),
    "global_window": (
        f"SELECT window_start, window_end, COUNT(*) AS n, MAX(price) AS top, "
        f"MIN(ts) AS first_ts, SUM(amount) AS total FROM {TUMBLE} "
        f"GROUP BY window_start, window_end",
        f"SELECT window_start, window_end, COUNT(*), MAX(price), MIN(ts), SUM(amount) "
        f"FROM {D_TUMBLE} GROUP BY ALL",
    ),
    "having_and_expression_key": (
        f"SELECT window_start, auction % 3 AS bucket, COUNT(*) AS n, "
        f"SUM(price) / COUNT(price) AS avg_price FROM {TUMBLE} WHERE bidder > 3 "
        f"GROUP BY window_start, window_end, auction % 3 HAVING COUNT(*) > 2",
        f"SELECT window_start, auction % 3, COUNT(*), SUM(price) // COUNT(price) "
        f"FROM {D_TUMBLE} WHERE bidder > 3 GROUP BY window_start, window_end, auction % 3 "
        f"HAVING COUNT(*) > 2",
    ),
    "avg_integer_and_window_time": (
        f"SELECT window_time, auction, AVG(price) AS avg_price FROM {TUMBLE} "
        f"GROUP BY window_start, window_end, window_time, auction",
        f"SELECT window_end - INTERVAL 1 MILLISECOND, auction, "
        f"CAST(TRUNC(AVG(price)) AS BIGINT) FROM {D_TUMBLE} GROUP BY window_start, "
        f"window_end, auction",
    ),
    "session_per_key": (
        f"SELECT window_start, window_end, bidder, COUNT(*) AS n, SUM(price) AS s, "
        f"MAX(price) AS hi, MIN(channel) AS ch FROM {session('bidder', 3000)} "
        f"GROUP BY window_start, window_end, bidder",
        f"SELECT window_start, window_end, bidder, COUNT(*), SUM(price), MAX(price), "
        f"MIN(channel) FROM {d_session('bidder', 3000)} GROUP BY window_start, window_end, bidder",
    ),
    "session_global": (
        f"SELECT window_start, window_end, COUNT(*) AS n, AVG(amount) AS a "
        f"FROM {session('', 250)} GROUP BY window_start, window_end",
        f"SELECT window_start, window_end, COUNT(*), AVG(amount) FROM {d_session('', 250)} "
        f"GROUP BY window_start, window_end",
    ),
    "session_two_keys_with_nulls": (
        f"SELECT window_start, window_end, auction, channel, COUNT(price) AS n, "
        f"CAST(TRUNC(AVG(price)) AS BIGINT) AS a FROM {session('auction, channel', 2000)} "
        f"GROUP BY window_start, window_end, auction, channel",
        f"SELECT window_start, window_end, auction, channel, COUNT(price), "
        f"CAST(TRUNC(AVG(price)) AS BIGINT) FROM {d_session('auction, channel', 2000)} "
        f"GROUP BY window_start, window_end, auction, channel",
    ),
    "session_extra_key_filter_having": (
        f"SELECT window_start, bidder, channel, COUNT(*) FILTER (WHERE price > 300) AS big, "
        f"SUM(amount) AS total FROM {session('bidder', 4000)} WHERE auction <> 3 "
        f"GROUP BY window_start, window_end, bidder, channel HAVING COUNT(*) > 1",
        f"SELECT window_start, bidder, channel, COUNT(*) FILTER (WHERE price > 300), "
        f"SUM(amount) FROM {d_session('bidder', 4000, where='auction <> 3')} "
        f"GROUP BY window_start, window_end, bidder, channel HAVING COUNT(*) > 1",
    ),
    "session_legacy_syntax": (
        "SELECT SESSION_START(ts, INTERVAL '3' SECOND) AS s, SESSION_END(ts, INTERVAL '3' "
        "SECOND) AS e, bidder, COUNT(*) AS n FROM bids "
        "GROUP BY SESSION(ts, INTERVAL '3' SECOND), bidder",
        f"SELECT window_start, window_end, bidder, COUNT(*) FROM {d_session('bidder', 3000)} "
        f"GROUP BY window_start, window_end, bidder",
    ),
    "window_top3": (
        "SELECT window_start, id, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        f"window_start, window_end ORDER BY price DESC, id) AS rn FROM {TUMBLE} "
        "WHERE price IS NOT NULL) WHERE rn <= 3",
        "SELECT window_start, id, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        f"window_start, window_end ORDER BY price DESC, id) AS rn FROM {D_TUMBLE} "
        "WHERE price IS NOT NULL) WHERE rn <= 3",
    ),
    "window_dedup_first_per_bidder": (
        "SELECT window_start, bidder, id, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        f"window_start, window_end, bidder ORDER BY ts, id) AS rn FROM {HOP}) WHERE rn = 1",
        "SELECT window_start, bidder, id, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        f"window_start, window_end, bidder ORDER BY ts, id) AS rn FROM {D_HOP}) WHERE rn = 1",
    ),
    "topn_after_window_aggregation": (
        "SELECT window_start, auction, n, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        "window_start, window_end ORDER BY n DESC, auction) AS rn FROM (SELECT window_start, "
        f"window_end, auction, COUNT(*) AS n FROM {TUMBLE} GROUP BY window_start, window_end, "
        "auction)) WHERE rn <= 2",
        "SELECT window_start, auction, n, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        "window_start, window_end ORDER BY n DESC, auction) AS rn FROM (SELECT window_start, "
        f"window_end, auction, COUNT(*) AS n FROM {D_TUMBLE} GROUP BY window_start, "
        "window_end, auction)) WHERE rn <= 2",
    ),
    "topn_after_session_aggregation": (
        "SELECT window_start, bidder, n FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        "window_start, window_end ORDER BY n DESC, bidder) AS rn FROM (SELECT window_start, "
        f"window_end, bidder, COUNT(*) AS n FROM {session('bidder', 3000)} "
        "GROUP BY window_start, window_end, bidder)) WHERE rn <= 1",
        "SELECT window_start, bidder, n FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY "
        "window_start, window_end ORDER BY n DESC, bidder) AS rn FROM (SELECT window_start, "
        f"window_end, bidder, COUNT(*) AS n FROM {d_session('bidder', 3000)} "
        "GROUP BY window_start, window_end, bidder)) WHERE rn <= 1",
    ),
    "hop_distinct_filtered": (
        f"SELECT window_start, COUNT(DISTINCT bidder) AS bidders, MAX(price) AS top "
        f"FROM {HOP} WHERE channel <> 'api' GROUP BY window_start, window_end",
        f"SELECT window_start, COUNT(DISTINCT bidder), MAX(price) FROM {D_HOP} "
        f"WHERE channel <> 'api' GROUP BY window_start, window_end",
    ),
    "filter_on_window_column": (  # the window columns are used, so windows are assigned first
        f"SELECT window_start, auction, COUNT(*) AS n, SUM(price) AS s FROM {HOP} "
        f"WHERE ts >= window_start + INTERVAL '3' SECOND GROUP BY window_start, window_end, "
        f"auction",
        f"SELECT window_start, auction, COUNT(*), SUM(price) FROM {D_HOP} "
        f"WHERE ts >= window_start + INTERVAL 3 SECOND GROUP BY window_start, window_end, "
        f"auction",
    ),
    "window_rows_without_aggregation": (
        f"SELECT auction, price, window_start, window_end FROM {TUMBLE} WHERE price < 100",
        f"SELECT auction, price, window_start, window_end FROM {D_TUMBLE} WHERE price < 100",
    ),
}


class Approx(float):
    """A float equal to any float within 1e-9 (relative): sums and averages merged in
    another order (other batch sizes, parallel instances, DuckDB) differ in the last bits.
    """

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, int | float) or isinstance(other, bool):
            return False
        return math.isclose(self, other, rel_tol=1e-9, abs_tol=1e-9)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = float.__hash__


def _normalize(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) else Approx(value)
    if isinstance(value, decimal.Decimal):
        return Approx(float(value))
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def _rows(columns: list[list[object]]) -> list[tuple]:
    rows = [tuple(_normalize(v) for v in row) for row in zip(*columns, strict=True)]
    return sorted(rows, key=lambda r: tuple((v is None, str(type(v)), v) for v in r))


def streamsql_rows(
    directory, sql: str, parallelism: int, batch_size: int, scan_parallelism: int = 1
):
    session = streamsql.connect(
        settings={"parallelism.default": str(parallelism), "execution.batch-size": str(batch_size)}
    )
    session.execute(
        f"CREATE TABLE bids ({DDL_COLUMNS}) WITH ('connector' = 'filesystem', "
        f"'path' = '{directory}', 'format' = 'parquet', "
        f"'scan.parallelism' = '{scan_parallelism}')"
    )
    handle = session.sql(sql)
    table = handle.to_arrow()
    return _rows([c.to_pylist() for c in table.columns]), handle.result


def duckdb_rows(directory, sql: str, *, exclude_late: bool = False):
    con = duck.connect()
    where = " WHERE NOT late" if exclude_late else ""
    duck.run(
        con,
        f"CREATE VIEW bids AS SELECT * FROM read_parquet('{directory}/*.parquet'){where}",
    )
    table = duck.query_arrow(con, sql)
    return _rows([c.to_pylist() for c in table.columns])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("bids"))


@pytest.fixture(scope="module")
def late_dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("late_bids"), with_late=True)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_duckdb(dataset, case, parallelism, batch_size):
    ours, theirs = CASES[case]
    got, result = streamsql_rows(dataset, ours, parallelism, batch_size)
    expected = duckdb_rows(dataset, theirs)
    assert got == expected
    assert result.late_rows_dropped == 0
    assert len(got) > 0


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
def test_late_rows_are_dropped_and_counted(late_dataset, parallelism, batch_size):
    ours, theirs = CASES["tumble_count_max"]
    got, result = streamsql_rows(late_dataset, ours, parallelism, batch_size)
    assert got == duckdb_rows(late_dataset, theirs, exclude_late=True)
    assert result.late_rows_dropped == 9


@pytest.fixture(scope="module")
def split_dataset(tmp_path_factory):
    """The bids in three files (by id mod 3), each in time order: read by three instances."""
    whole = tmp_path_factory.mktemp("whole")
    table = pq.read_table(write_dataset(whole) / "part-0.parquet")
    ids = table.column("id").to_numpy()
    split = tmp_path_factory.mktemp("split")
    for i in range(3):
        pq.write_table(table.filter(pa.array(ids % 3 == i)), split / f"part-{i}.parquet")
    return split


@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("case", ["tumble_count_max", "hop_distinct_filtered", "session_per_key"])
def test_parallel_scans_match_duckdb(split_dataset, case, parallelism):
    """Three source instances, each with its own watermark: the slowest one decides."""
    if case not in CASES:
        pytest.skip(f"no case {case}")
    ours, theirs = CASES[case]
    got, result = streamsql_rows(split_dataset, ours, parallelism, 7, scan_parallelism=3)
    assert got == duckdb_rows(split_dataset, theirs)
    assert result.late_rows_dropped == 0
    assert len({label for label in result.source_tables}) == 3


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
def test_late_rows_miss_their_sessions(late_dataset, parallelism, batch_size):
    ours, _ = CASES["session_per_key"]
    theirs = (
        "SELECT window_start, window_end, bidder, COUNT(*), SUM(price), MAX(price), "
        f"MIN(channel) FROM {d_session('bidder', 3000, where='NOT late')} "
        "GROUP BY window_start, window_end, bidder"
    )
    got, result = streamsql_rows(late_dataset, ours, parallelism, batch_size)
    assert got == duckdb_rows(late_dataset, theirs)
    assert result.late_rows_dropped == 9
