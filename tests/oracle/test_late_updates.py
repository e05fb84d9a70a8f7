"""Oracle tests for updating window results: with an allowed lateness longer than any row is
late, every late row updates its windows, and the final rows equal DuckDB's batch answer
over all rows (late ones included), at every parallelism and batch size; early firing on
top changes nothing in the final rows.
"""

from __future__ import annotations

import pytest

import streamsql
from tests.oracle.data import DDL_COLUMNS, write_dataset
from tests.oracle.test_oracle import BATCH_SIZES, CASES, PARALLELISM, _rows, duckdb_rows

LATE_CASES = (
    "tumble_count_max",
    "tumble_count_distinct",
    "hop_sum",
    "cumulate_count",
    "session_per_key",
)
LATENESS = {"table.exec.emit.allow-lateness": "1 h"}
EARLY = {"table.exec.emit.early-fire.enabled": "true", "table.exec.emit.early-fire.delay": "1 ms"}


@pytest.fixture(scope="module")
def late_dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("late_updates"), with_late=True)


def streamsql_rows(directory, sql: str, parallelism: int, batch_size: int, **settings: str):
    session = streamsql.connect(
        settings={
            "parallelism.default": str(parallelism),
            "execution.batch-size": str(batch_size),
            **settings,
        }
    )
    session.execute(
        f"CREATE TABLE bids ({DDL_COLUMNS}) WITH ('connector' = 'filesystem', "
        f"'path' = '{directory}', 'format' = 'parquet')"
    )
    handle = session.sql(sql)
    assert handle.updating
    table = handle.to_arrow()
    return _rows([c.to_pylist() for c in table.columns]), handle.result


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("case", LATE_CASES)
def test_late_rows_within_the_lateness_count(late_dataset, case, parallelism, batch_size):
    ours, theirs = CASES[case]
    got, result = streamsql_rows(late_dataset, ours, parallelism, batch_size, **LATENESS)
    assert got == duckdb_rows(late_dataset, theirs)
    assert result.late_rows_dropped == 0


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("case", ["tumble_count_max", "hop_sum", "cumulate_count"])
def test_early_firing_leaves_the_same_final_rows(late_dataset, case, batch_size):
    ours, theirs = CASES[case]
    got, result = streamsql_rows(late_dataset, ours, 2, batch_size, **LATENESS, **EARLY)
    assert got == duckdb_rows(late_dataset, theirs)
    assert result.late_rows_dropped == 0
