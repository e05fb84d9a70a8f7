"""Fault injection: a job killed with SIGKILL at random points (while processing a batch,
while a checkpoint is being recorded, between recording it and committing the sinks,
between two sinks' commits) and restarted with the same state directory ends with exactly
the output of a run that was never interrupted (exactly-once), or with at least all of it
(at-least-once); also when each restart runs at another parallelism.

STREAMSQL_RECOVERY_CRASHES (default 2) sets how many times each job is killed. The tests
marked ``soak`` (more shapes) run in CI, not by default: ``pytest -m soak``.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from tests.checkpoint.recovery import Job, bids, output, run, run_with_crashes

CRASHES = int(os.environ.get("STREAMSQL_RECOVERY_CRASHES", "2"))
SOAK = pytest.mark.soak
#: A checkpoint every three batches.
EVERY = {"execution.checkpointing.interval": "1500 rows"}

SOURCE = """
CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '0.5' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'parquet');
SET 'execution.batch-size' = '500';
"""

JOBS = {
    "tumble": Job(
        SOURCE
        + """
CREATE TABLE out (ws TIMESTAMP(3), auction BIGINT, n BIGINT, top BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
INSERT INTO out
SELECT window_start, auction, COUNT(*), MAX(price)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY window_start, window_end, auction;
""",
        "csv",
    ),
    "group_by": Job(
        SOURCE
        + """
CREATE TABLE out (auction BIGINT, n BIGINT, total BIGINT, top BIGINT,
    PRIMARY KEY (auction) NOT ENFORCED)
WITH ('connector' = 'duckdb', 'path' = '{out}', 'table' = 'out');
INSERT INTO out SELECT auction, COUNT(*), SUM(price), MAX(price) FROM bids GROUP BY auction;
""",
        "duckdb",
    ),
    "interval_join": Job(
        SOURCE
        + """
CREATE TABLE out (auction BIGINT, a BIGINT, b BIGINT, pa BIGINT, pb BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
INSERT INTO out
SELECT x.auction, x.bidder, y.bidder, x.price, y.price
FROM bids x JOIN bids y ON x.auction = y.auction
  AND y.ts BETWEEN x.ts AND x.ts + INTERVAL '0.3' SECOND
WHERE x.price > y.price;
""",
        "csv",
    ),
    "dedup": Job(
        SOURCE
        + """
CREATE TABLE out (bidder BIGINT, auction BIGINT, price BIGINT, PRIMARY KEY (bidder) NOT ENFORCED)
WITH ('connector' = 'duckdb', 'path' = '{out}', 'table' = 'out');
INSERT INTO out
SELECT bidder, auction, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY price DESC) AS rn FROM bids
) WHERE rn = 1;
""",
        "duckdb",
    ),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bids(tmp_path_factory.mktemp("data") / "bids.parquet")


@pytest.fixture(scope="module")
def expected(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each job's output from one uninterrupted run without checkpoints."""
    out = {}
    for name, job in JOBS.items():
        directory = tmp_path_factory.mktemp(f"expected-{name}")
        proc = run(job.write(directory, data), None)
        assert proc.returncode == 0, proc.stderr
        out[name] = output(directory, job)
        assert out[name].num_rows > 10, name
    return out


def crashed_and_finished(
    name: str, data: Path, tmp_path: Path, seed: str, crashes: int = CRASHES, **options
) -> pa.Table:
    """Job ``name``'s visible output after runs killed ``crashes`` times (at least once) and
    a last run to the end; ``options`` go to ``run_with_crashes``.
    """
    job = JOBS[name]
    script = job.write(tmp_path, data)
    rng = random.Random(seed)
    kills = run_with_crashes(script, tmp_path / "state", rng, crashes, **options)
    assert kills >= 1, "no run was killed: the crash points were never reached"
    return output(tmp_path, job)


@pytest.mark.parametrize("name", sorted(JOBS))
@pytest.mark.parametrize("parallelism", [pytest.param(1, marks=SOAK), 2])
def test_exactly_once_after_crashes(name, parallelism, data, expected, tmp_path):
    got = crashed_and_finished(
        name, data, tmp_path, f"{name}-{parallelism}", parallelism=parallelism, settings=EVERY
    )
    assert got.equals(expected[name])


@pytest.mark.parametrize("name", [pytest.param("tumble", marks=SOAK), "interval_join"])
def test_exactly_once_on_the_deterministic_runtime(name, data, expected, tmp_path):
    """The single-threaded executor takes its checkpoints between rounds, without barriers."""
    settings = {**EVERY, "execution.runtime": "deterministic"}
    got = crashed_and_finished(
        name, data, tmp_path, f"deterministic-{name}", parallelism=2, settings=settings
    )
    assert got.equals(expected[name])


@pytest.mark.parametrize("name", sorted(JOBS))
def test_restore_at_other_parallelisms(name, data, expected, tmp_path):
    """Killed at -p 1, restored at -p 3, killed again, finished at -p 2."""
    got = crashed_and_finished(
        name, data, tmp_path, f"rescale-{name}", 2,
        points=("batch",), parallelism=[1, 3, 2], settings=EVERY,
    )  # fmt: skip
    assert got.equals(expected[name])


@pytest.mark.parametrize("name", [pytest.param("tumble", marks=SOAK), "group_by"])
def test_at_least_once_loses_nothing(name, data, expected, tmp_path):
    settings = {**EVERY, "execution.checkpointing.mode": "AT_LEAST_ONCE"}
    # Sinks do not commit with checkpoints in this mode: no 'sink-commit' point.
    points = ("batch", "checkpoint", "commit")
    table = crashed_and_finished(
        name, data, tmp_path, f"alo-{name}", points=points, settings=settings
    )
    got = Counter(map(tuple, _rows(table)))
    want = Counter(map(tuple, _rows(expected[name])))
    assert not want - got, "rows of the uninterrupted run are missing"


def test_at_most_once_repeats_nothing(data, expected, tmp_path):
    job = JOBS["tumble"]
    script = job.write(tmp_path, data)
    settings = {**EVERY, "execution.checkpointing.mode": "AT_MOST_ONCE"}
    first = run(script, tmp_path / "state", crash_at="batch:6", settings=settings)
    assert first.returncode == -9
    assert run(script, tmp_path / "state", settings=settings).returncode == 0
    got = Counter(map(tuple, _rows(output(tmp_path, job))))
    want = Counter(map(tuple, _rows(expected["tumble"])))
    # Nothing twice; windows open at the crash are lost or partial, the rest is whole.
    assert max(got.values()) == 1
    assert sum((got & want).values()) >= 0.3 * want.total()
    assert got != want


def _rows(table) -> list[list]:
    return [list(r.values()) for r in table.to_pylist()]
