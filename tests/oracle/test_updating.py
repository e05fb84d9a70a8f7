"""Oracle tests for updating queries: the final state of a streaming run (its changelog
applied) equals DuckDB's batch answer, at every parallelism and batch size; and every
changelog is consistent.
"""

from __future__ import annotations

import pytest

import streamsql
from tests.changelog_check import check_changelog
from tests.oracle.data import DDL_COLUMNS, write_dataset
from tests.oracle.test_oracle import _rows, duckdb_rows

PARALLELISM = (1, 2, 4)
#: (batch size, mini-batch size): 0 applies every batch to state on its own, so that the
#: finest changelogs are checked; the last applies mini-batches of several batches.
BATCHING = ((1, 0), (7, 0), (65536, 0), (7, 20))
#: Combinations of the slowest batchings left to the soak run (CI runs it: pytest -m soak),
#: to keep the default run short: each batching still runs by default at parallelism 1.
SOAK = {(2, (1, 0)), (4, (1, 0)), (2, (7, 0)), (4, (7, 0))}


def _matrix() -> list:
    return [
        pytest.param(
            p, b, id=f"{p}-b{b[0]}m{b[1]}", marks=[pytest.mark.soak] if (p, b) in SOAK else []
        )
        for p in PARALLELISM
        for b in BATCHING
    ]


TOP = "SELECT *, ROW_NUMBER() OVER (PARTITION BY {p} ORDER BY {o}) AS rn FROM {src}"

CASES = {
    "group_by_several_aggregates": (
        "SELECT auction, COUNT(*) AS n, COUNT(price) AS np, SUM(price) AS s, MIN(amount) AS lo, "
        "MAX(amount) AS hi, AVG(amount) AS av, COUNT(*) FILTER (WHERE price > 500) AS big "
        "FROM bids GROUP BY auction",
        "SELECT auction, COUNT(*), COUNT(price), SUM(price), MIN(amount), MAX(amount), "
        "AVG(amount), COUNT(*) FILTER (WHERE price > 500) FROM bids GROUP BY auction",
    ),
    "count_distinct_two_keys": (
        "SELECT auction, channel, COUNT(DISTINCT bidder) AS bidders, SUM(DISTINCT bidder) AS sb "
        "FROM bids GROUP BY auction, channel",
        "SELECT auction, channel, COUNT(DISTINCT bidder), SUM(DISTINCT bidder) FROM bids "
        "GROUP BY auction, channel",
    ),
    "global_aggregate": (
        "SELECT COUNT(*) AS n, SUM(price) AS s, MAX(amount) AS hi, COUNT(DISTINCT channel) AS ch "
        "FROM bids",
        "SELECT COUNT(*), SUM(price), MAX(amount), COUNT(DISTINCT channel) FROM bids",
    ),
    "count_star_only": (
        "SELECT COUNT(*) AS n FROM bids WHERE auction = 3",
        "SELECT COUNT(*) FROM bids WHERE auction = 3",
    ),
    "having": (
        "SELECT bidder, COUNT(*) AS n, MAX(price) AS top FROM bids GROUP BY bidder "
        "HAVING COUNT(*) > 7",
        "SELECT bidder, COUNT(*), MAX(price) FROM bids GROUP BY bidder HAVING COUNT(*) > 7",
    ),
    "two_level_avg_of_maxima": (
        "SELECT AVG(m) AS avg_max, MAX(m) AS max_max, MIN(m) AS min_max, COUNT(*) AS n FROM "
        "(SELECT auction, MAX(price) AS m FROM bids GROUP BY auction)",
        "SELECT CAST(TRUNC(AVG(m)) AS BIGINT), MAX(m), MIN(m), COUNT(*) FROM "
        "(SELECT auction, MAX(price) AS m FROM bids GROUP BY auction)",
    ),
    "two_level_min_of_counts": (
        "SELECT channel, MIN(n) AS least, MAX(n) AS most, COUNT(DISTINCT n) AS sizes FROM "
        "(SELECT auction, channel, COUNT(*) AS n FROM bids GROUP BY auction, channel) "
        "GROUP BY channel",
        "SELECT channel, MIN(n), MAX(n), COUNT(DISTINCT n) FROM "
        "(SELECT auction, channel, COUNT(*) AS n FROM bids GROUP BY auction, channel) "
        "GROUP BY channel",
    ),
    "top1_per_key": (
        "SELECT auction, id, price FROM ("
        + TOP.format(p="auction", o="price DESC, id", src="bids")
        + ") WHERE rn = 1",
        "SELECT auction, id, price FROM ("
        + TOP.format(p="auction", o="price DESC NULLS LAST, id", src="bids")
        + ") WHERE rn = 1",
    ),
    "top3_per_key_with_rank": (
        "SELECT auction, rn, id, price FROM ("
        + TOP.format(p="auction", o="price DESC, id", src="bids")
        + ") WHERE rn <= 3",
        "SELECT auction, rn, id, price FROM ("
        + TOP.format(p="auction", o="price DESC NULLS LAST, id", src="bids")
        + ") WHERE rn <= 3",
    ),
    "keep_first_dedup": (
        "SELECT bidder, id, ts FROM ("
        + TOP.format(p="bidder", o="ts, id", src="bids")
        + ") WHERE rn = 1",
        "SELECT bidder, id, ts FROM ("
        + TOP.format(p="bidder", o="ts, id", src="bids")
        + ") WHERE rn = 1",
    ),
    "keep_last_dedup": (
        "SELECT bidder, id, channel FROM ("
        + TOP.format(p="bidder", o="ts DESC, id DESC", src="bids")
        + ") WHERE rn = 1",
        "SELECT bidder, id, channel FROM ("
        + TOP.format(p="bidder", o="ts DESC, id DESC", src="bids")
        + ") WHERE rn = 1",
    ),
    "top2_over_updating_counts": (
        "SELECT channel, auction, n, rn FROM ("
        + TOP.format(
            p="channel",
            o="n DESC, auction",
            src="(SELECT channel, auction, COUNT(*) AS n FROM bids GROUP BY channel, auction)",
        )
        + ") WHERE rn <= 2",
        "SELECT channel, auction, n, rn FROM ("
        + TOP.format(
            p="channel",
            o="n DESC, auction",
            src="(SELECT channel, auction, COUNT(*) AS n FROM bids GROUP BY channel, auction)",
        )
        + ") WHERE rn <= 2",
    ),
    "window_top2": (
        "SELECT window_start, auction, n, rn FROM ("
        + TOP.format(
            p="window_start, window_end",
            o="n DESC, auction",
            src="(SELECT window_start, window_end, auction, COUNT(*) AS n FROM "
            "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) "
            "GROUP BY window_start, window_end, auction)",
        )
        + ") WHERE rn <= 2",
        "SELECT window_start, auction, n, rn FROM ("
        + TOP.format(
            p="window_start",
            o="n DESC, auction",
            src="(SELECT time_bucket(INTERVAL 10 SECOND, ts) AS window_start, auction, "
            "COUNT(*) AS n FROM bids GROUP BY ALL)",
        )
        + ") WHERE rn <= 2",
    ),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("bids_updating"), rows=150)


def streamed(directory, sql: str, parallelism: int, batching: tuple[int, int]):
    batch_size, mini_batch = batching
    settings = {"parallelism.default": str(parallelism), "execution.batch-size": str(batch_size)}
    if mini_batch:
        settings["table.exec.mini-batch.size"] = str(mini_batch)
    else:
        settings["table.exec.mini-batch.enabled"] = "false"
    session = streamsql.connect(settings=settings)
    session.execute(
        f"CREATE TABLE bids ({DDL_COLUMNS}) WITH ('connector' = 'filesystem', "
        f"'path' = '{directory}', 'format' = 'parquet')"
    )
    handle = session.sql(sql)
    batches = list(handle.stream())
    mode = handle.planned.roots[0].mode
    keys = mode.keys if mode.kind == "upsert" else None
    live = check_changelog(batches, keys)
    columns = [[dict(row)[c] for row in live.elements()] for c in handle.schema.names if c != "_op"]
    return _rows(columns), mode


@pytest.mark.parametrize(("parallelism", "batching"), _matrix())
@pytest.mark.parametrize("case", sorted(CASES))
def test_final_state_matches_duckdb(dataset, case, parallelism, batching):
    ours, theirs = CASES[case]
    got, mode = streamed(dataset, ours, parallelism, batching)
    assert got == duckdb_rows(dataset, theirs)
    assert len(got) > 0
    assert mode.updating == (case != "window_top2")
