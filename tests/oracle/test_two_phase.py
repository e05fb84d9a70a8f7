"""Two-phase window aggregation ('table.optimizer.agg-phase-strategy' = 'TWO_PHASE') gives
DuckDB's batch answer at every parallelism and batch size, late rows counted as one phase
counts them; the oracle suites themselves run with the default (AUTO).
"""

from __future__ import annotations

import pytest

import streamsql
from tests.oracle import test_oracle
from tests.oracle.data import DDL_COLUMNS
from tests.oracle.test_oracle import (
    BATCH_SIZES,
    D_CUMULATE,
    D_TUMBLE,
    PARALLELISM,
    TUMBLE,
    duckdb_rows,
    streamsql_rows,
)

STRATEGY = "table.optimizer.agg-phase-strategy"
CUMULATE = test_oracle.CUMULATE

CASES = {
    name: test_oracle.CASES[name]
    for name in (
        "tumble_count_max",
        "tumble_several_keys",
        "tumble_filter_clause",
        "global_window",
        "hop_sum",
        "avg_integer_and_window_time",
        "having_and_expression_key",
        "filter_on_window_column",
    )
} | {
    "min_max_strings_and_times": (
        f"SELECT window_start, auction, MIN(channel) AS lo, MAX(channel) AS hi, "
        f"MIN(ts) AS first_ts, MAX(ts) AS last_ts, COUNT(channel) AS c FROM {TUMBLE} "
        f"GROUP BY window_start, window_end, auction",
        f"SELECT window_start, auction, MIN(channel), MAX(channel), MIN(ts), MAX(ts), "
        f"COUNT(channel) FROM {D_TUMBLE} GROUP BY window_start, window_end, auction",
    ),
    "global_avg_filter": (
        f"SELECT window_end, AVG(amount) AS a, COUNT(*) FILTER (WHERE channel = 'web') AS w, "
        f"MAX(price) FILTER (WHERE bidder > 10) AS hi FROM {TUMBLE} "
        f"GROUP BY window_start, window_end",
        f"SELECT window_end, AVG(amount), COUNT(*) FILTER (WHERE channel = 'web'), "
        f"MAX(price) FILTER (WHERE bidder > 10) FROM {D_TUMBLE} GROUP BY ALL",
    ),
    "cumulate_given_windows": (  # the window columns are used: each row comes once per window
        f"SELECT window_start, window_end, channel, COUNT(*) AS n, SUM(price) AS s "
        f"FROM {CUMULATE} WHERE ts >= window_start GROUP BY window_start, window_end, channel",
        f"SELECT window_start, window_end, channel, COUNT(*), SUM(price) FROM {D_CUMULATE} "
        f"GROUP BY ALL",
    ),
}


@pytest.fixture(autouse=True)
def two_phase(monkeypatch):
    """Every session the reused helpers open splits its window aggregates."""
    connect = streamsql.connect

    def split(state_dir=None, settings=None):
        return connect(state_dir, {**(settings or {}), STRATEGY: "TWO_PHASE"})

    monkeypatch.setattr(streamsql, "connect", split)


dataset = test_oracle.dataset
late_dataset = test_oracle.late_dataset
split_dataset = test_oracle.split_dataset


def test_the_plans_have_two_phases(dataset):
    s = streamsql.connect(settings={"parallelism.default": "2"})
    s.execute(
        f"CREATE TABLE bids ({DDL_COLUMNS}) WITH ('connector' = 'filesystem', "
        f"'path' = '{dataset}', 'format' = 'parquet')"
    )
    for name, (ours, _) in CASES.items():
        text = s.explain(ours)
        assert "LocalWindowAggregate(" in text and "GlobalWindowAggregate(" in text, name


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_duckdb(dataset, case, parallelism, batch_size):
    ours, theirs = CASES[case]
    got, result = streamsql_rows(dataset, ours, parallelism, batch_size)
    assert got == duckdb_rows(dataset, theirs)
    assert result.late_rows_dropped == 0
    assert len(got) > 0


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
def test_late_rows_are_dropped_and_counted(late_dataset, parallelism, batch_size):
    ours, theirs = CASES["tumble_count_max"]
    got, result = streamsql_rows(late_dataset, ours, parallelism, batch_size)
    assert got == duckdb_rows(late_dataset, theirs, exclude_late=True)
    assert result.late_rows_dropped == 9


@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("case", ["tumble_count_max", "hop_sum", "global_window"])
def test_parallel_scans_match_duckdb(split_dataset, case, parallelism):
    """Three source instances, each with a local phase and its own watermark."""
    ours, theirs = CASES[case]
    got, result = streamsql_rows(split_dataset, ours, parallelism, 7, scan_parallelism=3)
    assert got == duckdb_rows(split_dataset, theirs)
    assert result.late_rows_dropped == 0
