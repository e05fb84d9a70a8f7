"""Oracle tests for the legacy group windows: ``GROUP BY TUMBLE(ts, size)`` gives the same
rows as the window TVF query it stands for and as DuckDB's batch answer, at every
parallelism and batch size.
"""

from __future__ import annotations

import pytest

from tests.oracle.data import write_dataset
from tests.oracle.test_oracle import BATCH_SIZES, PARALLELISM, duckdb_rows, streamsql_rows

S = "INTERVAL '{}' SECOND".format


def tvf(kind: str, *intervals: int, source: str = "bids") -> str:
    args = ", ".join(S(i) for i in intervals)
    return f"TABLE({kind}(TABLE {source}, DESCRIPTOR(ts), {args}))"


def d_tumble(size: int, offset: int = 0) -> str:
    """DuckDB's spelling of a tumbling window over bids."""
    start = f"time_bucket(INTERVAL {size} SECOND, ts, INTERVAL {offset} SECOND)"
    return (
        f"(SELECT *, {start} AS window_start, {start} + INTERVAL {size} SECOND AS window_end "
        f"FROM bids)"
    )


def d_hop(slide: int, size: int, offset: int = 0) -> str:
    """DuckDB's spelling of a hopping window: each row in the size / slide windows over it."""
    start = (
        f"time_bucket(INTERVAL {slide} SECOND, ts, INTERVAL {offset} SECOND) "
        f"- k * INTERVAL {slide} SECOND"
    )
    return (
        f"(SELECT b.*, {start} AS window_start, {start} + INTERVAL {size} SECOND AS window_end "
        f"FROM bids b, range({size // slide}) r(k))"
    )


T10 = f"TUMBLE(ts, {S(10)})"
H5 = f"HOP(ts, {S(5)}, {S(15)})"
H2 = f"HOP(ts, {S(2)}, {S(10)})"
SECOND_WINDOW = "TIMESTAMP '2020-09-13 12:26:50'"  # data.BASE_MS + 10 s

# name: (legacy query, the same query with the window TVF, DuckDB's batch query)
CASES = {
    "tumble_global": (
        f"SELECT TUMBLE_START(ts, {S(10)}) AS ws, TUMBLE_END(ts, {S(10)}) AS we, COUNT(*) AS n, "
        f"MAX(price) AS top FROM bids GROUP BY {T10}",
        f"SELECT window_start AS ws, window_end AS we, COUNT(*) AS n, MAX(price) AS top "
        f"FROM {tvf('TUMBLE', 10)} GROUP BY window_start, window_end",
        f"SELECT window_start, window_end, COUNT(*), MAX(price) FROM {d_tumble(10)} GROUP BY ALL",
    ),
    "tumble_keys_and_rowtime": (
        f"SELECT TUMBLE_START(ts, {S(10)}), TUMBLE_ROWTIME(ts, {S(10)}), auction, channel, "
        f"COUNT(*), SUM(price) FROM bids GROUP BY {T10}, auction, channel",
        f"SELECT window_start, window_time, auction, channel, COUNT(*), SUM(price) "
        f"FROM {tvf('TUMBLE', 10)} GROUP BY window_start, window_end, auction, channel",
        f"SELECT window_start, window_end - INTERVAL 1 MILLISECOND, auction, channel, COUNT(*), "
        f"SUM(price) FROM {d_tumble(10)} GROUP BY window_start, window_end, auction, channel",
    ),
    "tumble_alias_where_having": (
        f"SELECT TUMBLE_END(b.ts, {S(10)}) AS we, b.auction, COUNT(*) AS n FROM bids AS b "
        f"WHERE b.price > 100 GROUP BY TUMBLE(b.ts, {S(10)}), b.auction "
        f"HAVING COUNT(*) > 2 AND TUMBLE_START(b.ts, {S(10)}) >= {SECOND_WINDOW}",
        f"SELECT window_end AS we, b.auction, COUNT(*) AS n FROM {tvf('TUMBLE', 10)} AS b "
        f"WHERE b.price > 100 GROUP BY window_start, window_end, b.auction "
        f"HAVING COUNT(*) > 2 AND window_start >= {SECOND_WINDOW}",
        f"SELECT window_end, auction, COUNT(*) FROM {d_tumble(10)} WHERE price > 100 "
        f"GROUP BY window_start, window_end, auction "
        f"HAVING COUNT(*) > 2 AND window_start >= {SECOND_WINDOW}",
    ),
    "tumble_offset": (
        f"SELECT TUMBLE_START(ts, {S(10)}, {S(3)}) AS ws, TUMBLE_END(ts, {S(10)}, {S(3)}) AS we, "
        f"channel, AVG(amount) AS av FROM bids GROUP BY TUMBLE(ts, {S(10)}, {S(3)}), channel",
        f"SELECT window_start AS ws, window_end AS we, channel, AVG(amount) AS av "
        f"FROM {tvf('TUMBLE', 10, 3)} GROUP BY window_start, window_end, channel",
        f"SELECT window_start, window_end, channel, AVG(amount) FROM {d_tumble(10, 3)} "
        f"GROUP BY ALL",
    ),
    "hop_global": (
        f"SELECT HOP_START(ts, {S(5)}, {S(15)}), HOP_END(ts, {S(5)}, {S(15)}), COUNT(*), "
        f"COUNT(DISTINCT bidder) FROM bids GROUP BY {H5}",
        f"SELECT window_start, window_end, COUNT(*), COUNT(DISTINCT bidder) "
        f"FROM {tvf('HOP', 5, 15)} GROUP BY window_start, window_end",
        f"SELECT window_start, window_end, COUNT(*), COUNT(DISTINCT bidder) FROM {d_hop(5, 15)} "
        f"GROUP BY ALL",
    ),
    "hop_keys_where_having": (
        f"SELECT HOP_ROWTIME(ts, {S(2)}, {S(10)}) AS wt, auction, SUM(price) AS s FROM bids "
        f"WHERE channel <> 'api' GROUP BY auction, {H2} HAVING SUM(price) > 1000",
        f"SELECT window_time AS wt, auction, SUM(price) AS s FROM {tvf('HOP', 2, 10)} "
        f"WHERE channel <> 'api' GROUP BY auction, window_start, window_end "
        f"HAVING SUM(price) > 1000",
        f"SELECT window_end - INTERVAL 1 MILLISECOND, auction, SUM(price) FROM {d_hop(2, 10)} "
        f"WHERE channel <> 'api' GROUP BY window_start, window_end, auction "
        f"HAVING SUM(price) > 1000",
    ),
    "hop_offset": (
        f"SELECT HOP_START(ts, {S(5)}, {S(15)}, {S(1)}) AS ws, MIN(amount) AS lo FROM bids "
        f"GROUP BY HOP(ts, {S(5)}, {S(15)}, {S(1)})",
        f"SELECT window_start AS ws, MIN(amount) AS lo FROM {tvf('HOP', 5, 15, 1)} "
        f"GROUP BY window_start, window_end",
        f"SELECT window_start, MIN(amount) FROM {d_hop(5, 15, 1)} GROUP BY window_start, "
        f"window_end",
    ),
    "subquery_in_from": (
        f"SELECT TUMBLE_START(ts, {S(10)}) AS ws, channel, COUNT(*) AS n "
        f"FROM (SELECT ts, channel FROM bids WHERE price < 500) AS cheap "
        f"GROUP BY {T10}, channel",
        f"WITH cheap AS (SELECT ts, channel FROM bids WHERE price < 500) "
        f"SELECT window_start AS ws, channel, COUNT(*) AS n "
        f"FROM {tvf('TUMBLE', 10, source='cheap')} GROUP BY window_start, window_end, channel",
        f"SELECT window_start, channel, COUNT(*) FROM {d_tumble(10)} WHERE price < 500 "
        f"GROUP BY window_start, window_end, channel",
    ),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("bids"))


@pytest.fixture(scope="module")
def expected(dataset):
    """DuckDB's answer per case, computed once."""
    return {name: duckdb_rows(dataset, duck) for name, (_, _, duck) in CASES.items()}


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", sorted(CASES))
def test_legacy_window_matches_tvf_and_duckdb(dataset, expected, case, parallelism, batch_size):
    legacy, tvf_form, _ = CASES[case]
    got, result = streamsql_rows(dataset, legacy, parallelism, batch_size)
    assert got == expected[case]
    assert len(got) > 0
    assert result.late_rows_dropped == 0
    assert streamsql_rows(dataset, tvf_form, parallelism, batch_size)[0] == got
