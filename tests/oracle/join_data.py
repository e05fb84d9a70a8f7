"""Deterministic tables to join with the oracle bids: auctions, persons, a rates history
(a versioned table) and a small dimension file, all in the bids' time range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.oracle.data import BASE_MS, DELAY_MS, write_dataset

TS = pa.timestamp("ms")

AUCTIONS_DDL = """
    id BIGINT, seller BIGINT, category INT, reserve BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
"""
PERSONS_DDL = """
    id BIGINT, name STRING, state STRING, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
"""
RATES_DDL = """
    auction BIGINT, rate DOUBLE, ts TIMESTAMP(3),
    PRIMARY KEY (auction) NOT ENFORCED,
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
"""
DIM_DDL = "id BIGINT, label STRING, weight INT"


def _times(rng, n: int, span_ms: int) -> np.ndarray:
    """``n`` times over ``span_ms`` in order, each up to 1.9 s early (below the delay)."""
    slots = BASE_MS + np.sort(rng.integers(0, span_ms, n))
    return slots - rng.integers(0, DELAY_MS - 100, n)


def auctions(n: int = 40, seed: int = 3) -> pa.Table:
    """Auction ids 0..9 (bids use 0..6, so 7..9 never match), several rows per id."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": rng.integers(0, 10, n),
            "seller": rng.integers(0, 12, n),
            "category": rng.integers(9, 12, n).astype(np.int32),
            "reserve": pa.array(rng.integers(1, 1000, n), mask=rng.random(n) < 0.1),
            "ts": pa.array(_times(rng, n, 50_000), pa.int64()).cast(TS),
        }
    )


def persons(n: int = 15, seed: int = 5) -> pa.Table:
    """Person ids 0..14 (sellers use 0..11)."""
    rng = np.random.default_rng(seed)
    states = np.array(["OR", "ID", "CA", "WA"])
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "name": [f"p{i}" for i in range(n)],
            "state": pa.array(states[rng.integers(0, 4, n)], mask=rng.random(n) < 0.1),
            "ts": pa.array(_times(rng, n, 40_000), pa.int64()).cast(TS),
        }
    )


def rates(n: int = 30, seed: int = 9) -> pa.Table:
    """Versions of a rate per auction (0..7) over the bids' time range, distinct times."""
    rng = np.random.default_rng(seed)
    ts = BASE_MS - 5_000 + np.arange(n, dtype=np.int64) * 1_700
    return pa.table(
        {
            "auction": rng.integers(0, 8, n),
            "rate": np.round(rng.random(n) * 3, 3),
            "ts": pa.array(ts, pa.int64()).cast(TS),
        }
    )


def dim() -> pa.Table:
    """A small dimension: ids 0..5 (bids also have 6), id 2 twice, one NULL id."""
    return pa.table(
        {
            "id": pa.array([0, 1, 2, 2, 3, 4, 5, None], pa.int64()),
            "label": ["zero", "one", "two", "deux", "three", "four", "five", "none"],
            "weight": pa.array([5, 1, 2, 2, 3, None, 7, 9], pa.int32()),
        }
    )


def write_join_dataset(root: Path, rows: int = 200) -> dict[str, Path]:
    """Every table under its own directory of ``root``; returns name -> path."""
    paths = {"bids": write_dataset(root / "bids", rows=rows)}
    for name, table in (
        ("auctions", auctions()),
        ("persons", persons()),
        ("rates", rates()),
    ):
        (root / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / name / "part-0.parquet")
        paths[name] = root / name
    (root / "dim").mkdir(parents=True, exist_ok=True)
    pq.write_table(dim(), root / "dim" / "dim.parquet")
    paths["dim"] = root / "dim"
    return paths
