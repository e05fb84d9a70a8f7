"""Running a job as a user does (``streamsql run``, a process of its own), killing it with
SIGKILL at chosen points, restarting it with the same state directory, and reading what its
sinks made visible.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from streamsql import duck

#: Where a run may be killed (``streamsql.checkpoint.faults``).
POINTS = ("batch", "checkpoint", "commit", "sink-commit")


def bids(path: Path, rows: int = 12_000, auctions: int = 40, bidders: int = 300) -> Path:
    """A parquet file of bids, 100 per second of event time, each up to 400 ms out of
    order (the watermark allows 500 ms: no row is late, so every run sees the same rows).
    """
    rng = np.random.default_rng(7)
    ts = 1_700_000_000_000 + np.arange(rows) * 10 - rng.integers(0, 400, rows)
    table = pa.table(
        {
            "auction": rng.integers(0, auctions, rows),
            "bidder": rng.integers(0, bidders, rows),
            "price": rng.integers(1, 1000, rows),
            "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("ms")),
        }
    )
    pq.write_table(table, path, row_group_size=2000)
    return path


@dataclass
class Job:
    """A script with a filesystem (csv) or a duckdb sink named ``out``."""

    script: str
    sink: str  # 'csv' or 'duckdb'
    key: tuple[str, ...] = ()  # the duckdb sink's primary key
    settings: dict[str, str] = field(default_factory=dict)

    def write(self, directory: Path, data: Path) -> Path:
        out = directory / ("out.duckdb" if self.sink == "duckdb" else "out")
        path = directory / "job.sql"
        path.write_text(self.script.format(data=data, out=out))
        return path


def run(
    script: Path,
    state_dir: Path | None,
    *,
    parallelism: int = 1,
    crash_at: str | None = None,
    settings: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "streamsql.cli", "run", str(script), "-q"]
    args += ["-p", str(parallelism)]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    for k, v in (settings or {}).items():
        args += ["--set", f"{k}={v}"]
    env = {k: v for k, v in os.environ.items() if k != "STREAMSQL_CRASH_AT"}
    if crash_at:
        env["STREAMSQL_CRASH_AT"] = crash_at
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


def killed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == -9


def run_with_crashes(
    script: Path,
    state_dir: Path,
    rng: random.Random,
    crashes: int,
    *,
    points: tuple[str, ...] = POINTS,
    parallelism: int | list[int] = 1,
    settings: dict[str, str] | None = None,
    most: dict[str, int] | None = None,
) -> int:
    """Run until the job completes, killing it ``crashes`` times first (each at a random
    point and visit; a run the point is not reached in completes). Returns how many runs
    were killed. ``parallelism`` may differ per run (a list, used in turn).
    """
    # Visits every run reaches: each run has 24 batches to read and checkpoints every 3.
    most = most or {"batch": 20, "checkpoint": 4, "commit": 4, "sink-commit": 3}
    kills = 0
    attempt = 0
    while True:
        p = (
            parallelism[attempt % len(parallelism)]
            if isinstance(parallelism, list)
            else parallelism
        )
        attempt += 1
        crash = None
        if kills < crashes:
            point = rng.choice(points)
            crash = f"{point}:{rng.randint(1, most[point])}"
        proc = run(script, state_dir, parallelism=p, crash_at=crash, settings=settings)
        if killed(proc):
            kills += 1
            continue
        assert proc.returncode == 0, f"run {attempt} (crash at {crash}) failed:\n{proc.stderr}"
        if crash is None or kills >= crashes:
            return kills
        if attempt > crashes * 4:
            return kills


def output(directory: Path, job: Job) -> pa.Table:
    """What the job's sink made visible, sorted (a multiset to compare)."""
    if job.sink == "duckdb":
        con = duck.connect(str(directory / "out.duckdb"))
        try:
            table = duck.query_arrow(con, "SELECT * FROM out")
        finally:
            con.close()
    else:
        files = sorted(p for p in (directory / "out").glob("*") if not p.name.startswith("."))
        names = pacsv.ReadOptions(autogenerate_column_names=True)
        parts = [pacsv.read_csv(f, read_options=names) for f in files if f.stat().st_size]
        table = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
    if not table.num_columns:
        return table
    return table.sort_by([(c, "ascending") for c in table.column_names])
