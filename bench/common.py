"""Shared pieces of the benchmarks: generated bid data and timing helpers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).parent / "data"


def bids_file(rows: int, *, auctions: int = 10_000, rate_per_s: int = 10_000) -> Path:
    """A parquet file of ``rows`` bids (auction, bidder, price, ts), ``rate_per_s`` events
    per second of event time, each up to 2 s out of order. Generated once and reused.
    """
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bids-{rows}-{auctions}-{rate_per_s}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(42)
    base = 1_700_000_000_000
    step_ms = 1000 / rate_per_s
    ts = base + (np.arange(rows) * step_ms).astype(np.int64) - rng.integers(0, 2000, rows)
    table = pa.table(
        {
            "auction": rng.integers(0, auctions, rows),
            "bidder": rng.integers(0, 100_000, rows),
            "price": rng.integers(1, 100_000, rows),
            "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("ms")),
        }
    )
    pq.write_table(table, path, row_group_size=1 << 20)
    return path


class CliRun(NamedTuple):
    """One ``streamsql run``: wall seconds of the whole process, seconds of the job itself
    and the cores it kept busy, as the CLI's summary line reports them.
    """

    wall: float
    job: float
    cores: float


def run_cli(script: str, *args: str) -> CliRun:
    """Run ``streamsql run`` on ``script`` in a fresh process, as a user would."""
    path = DATA / "bench-query.sql"
    path.write_text(script)
    cmd = [sys.executable, "-m", "streamsql.cli", "run", str(path), *args]
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"streamsql run failed:\n{proc.stderr}")
    match = re.search(r"([0-9.]+) s \([0-9,]+ rows/s, ([0-9.]+) cores busy\)", proc.stderr)
    if match is None:
        raise SystemExit(f"no job summary in the output:\n{proc.stderr}")
    return CliRun(wall, float(match.group(1)), float(match.group(2)))


def duckdb_seconds(sql: str, views: dict[str, str] | None = None, repeat: int = 3) -> float:
    """DuckDB's best time over ``repeat`` runs materializing ``sql``, with each name of
    ``views`` a view over that parquet file.
    """
    from streamsql import duck

    con = duck.connect()
    for name, path in (views or {}).items():
        duck.run(con, f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        duck.run(con, f"CREATE OR REPLACE TEMP TABLE r AS {sql}")
        best = min(best, time.perf_counter() - began)
    return best


def best_of(n: int, fn):
    return min(fn() for _ in range(n))
