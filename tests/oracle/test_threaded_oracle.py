"""The threaded executor gives the deterministic driver's answers: a representative share of
the oracle suites (windows, sessions, top-N, updating aggregates, joins, UNION ALL) run with
'execution.runtime' = 'threads' at parallelism 1, 2 and 4 equals DuckDB's batch answer, as
the same tests require of the deterministic driver, with their own helpers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import streamsql
from tests.oracle import test_joins, test_oracle, test_updating
from tests.oracle.data import write_dataset
from tests.oracle.join_data import write_join_dataset
from tests.oracle.test_oracle import _rows, duckdb_rows, streamsql_rows

PARALLELISM = (1, 2, 4)

WINDOWED = (
    "tumble_count_max",
    "tumble_count_distinct",
    "hop_sum",
    "cumulate_count",
    "session_per_key",
    "window_top3",
    "topn_after_window_aggregation",
    "filter_project",
)
UPDATING = ("group_by_several_aggregates", "two_level_min_of_counts", "top3_per_key_with_rank")
JOINS = (
    "full_outer",
    "interval_left",
    "window_full_aggregates",
    "temporal_inner",
    "q7_highest_bid",
)


@pytest.fixture(autouse=True)
def threads(monkeypatch):
    """Every session the reused helpers open runs on threads, whatever the default."""
    connect = streamsql.connect

    def on_threads(state_dir=None, settings=None):
        return connect(state_dir, {**(settings or {}), "execution.runtime": "threads"})

    monkeypatch.setattr(streamsql, "connect", on_threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """The suites' datasets: bids, bids with late rows, the updating suite's, the joins'."""
    make = tmp_path_factory.mktemp
    return {
        "bids": write_dataset(make("bids")),
        "late": write_dataset(make("late"), with_late=True),
        "updating": write_dataset(make("updating"), rows=150),
        "joins": write_join_dataset(make("joins")),
    }


def test_the_helpers_run_on_threads(data):
    dataset = data["bids"]
    _, result = streamsql_rows(dataset, test_oracle.CASES["tumble_count_max"][0], 2, 7)
    assert streamsql.connect().settings["execution.runtime"] == "threads"
    assert result.rows_read > 0


@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", WINDOWED)
def test_windows_match_duckdb(data, case, parallelism):
    dataset = data["bids"]
    ours, theirs = test_oracle.CASES[case]
    got, result = streamsql_rows(dataset, ours, parallelism, 7)
    assert got == duckdb_rows(dataset, theirs)
    assert result.late_rows_dropped == 0 and len(got) > 0


@pytest.mark.parametrize("parallelism", (2, 4))
@pytest.mark.parametrize("case", ["tumble_count_max", "session_per_key", "hop_sum"])
def test_one_file_read_by_several_instances(data, case, parallelism):
    """The dataset is one parquet file: its instances read a range of its rows each."""
    dataset = data["bids"]
    ours, theirs = test_oracle.CASES[case]
    got, result = streamsql_rows(dataset, ours, parallelism, 7, scan_parallelism=parallelism)
    assert got == duckdb_rows(dataset, theirs)
    assert result.late_rows_dropped == 0
    assert len(result.source_tables) == parallelism


@pytest.mark.parametrize("parallelism", PARALLELISM)
def test_late_rows_are_the_same_rows(data, parallelism):
    """One source: each instance gets its rows and watermarks in the order it sent them."""
    late_dataset = data["late"]
    ours, theirs = test_oracle.CASES["tumble_count_max"]
    got, result = streamsql_rows(late_dataset, ours, parallelism, 7)
    assert got == duckdb_rows(late_dataset, theirs, exclude_late=True)
    assert result.late_rows_dropped == 9


@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", UPDATING)
def test_updating_results_match_duckdb(data, case, parallelism):
    updating_dataset = data["updating"]
    ours, theirs = test_updating.CASES[case]
    got, _ = test_updating.streamed(updating_dataset, ours, parallelism, (7, 20))
    assert got == duckdb_rows(updating_dataset, theirs) and len(got) > 0


@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", JOINS)
def test_joins_match_duckdb(data, case, parallelism):
    join_paths = data["joins"]
    ours, theirs = test_joins.CASES[case]
    session = test_joins.connect(join_paths, parallelism, 7)
    table = session.query(ours)
    got = _rows([c.to_pylist() for c in table.columns])
    assert got == test_joins.expected(join_paths, theirs) and len(got) > 0
    assert session.last_result is not None and session.last_result.late_rows_dropped == 0
