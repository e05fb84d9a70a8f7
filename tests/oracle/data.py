"""Deterministic bid data for oracle tests: in time order up to a bounded disorder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DELAY_MS = 2000  # the tables' watermark delay; disorder stays strictly below it
BASE_MS = 1_600_000_000_000

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("auction", pa.int64()),
        ("bidder", pa.int64()),
        ("price", pa.int64()),
        ("amount", pa.float64()),
        ("channel", pa.string()),
        ("ts", pa.timestamp("ms")),
        ("late", pa.bool_()),
    ]
)

DDL_COLUMNS = """
    id BIGINT,
    auction BIGINT,
    bidder BIGINT,
    price BIGINT,
    amount DOUBLE,
    channel STRING,
    ts TIMESTAMP(3),
    late BOOLEAN,
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
"""


def bids(n: int = 360, seed: int = 7, start_ms: int = BASE_MS) -> pa.Table:
    """``n`` bids about 137 ms apart, each up to 1.9 s earlier than its slot (disorder
    below the 2 s delay), with NULLs sprinkled into price and channel.
    """
    rng = np.random.default_rng(seed)
    slots = start_ms + np.arange(n, dtype=np.int64) * 137
    ts = slots - rng.integers(0, DELAY_MS - 100, n)
    price = rng.integers(1, 1000, n)
    price_mask = rng.random(n) < 0.05
    channels = np.array(["web", "app", "api", "partner"])[rng.integers(0, 4, n)]
    channel_mask = rng.random(n) < 0.05
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "auction": rng.integers(0, 7, n),
            "bidder": rng.integers(0, 25, n),
            "price": pa.array(price, mask=price_mask),
            "amount": np.round(rng.random(n) * 100, 3),
            "channel": pa.array(channels, mask=channel_mask),
            "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("ms")),
            "late": np.zeros(n, dtype=bool),
        },
        schema=SCHEMA,
    )


def late_bids(main: pa.Table, n_late: int = 9, n_ok: int = 20, seed: int = 11) -> pa.Table:
    """A second file: rows long past the watermark (``late`` = TRUE) mixed with on-time rows
    that continue the stream.
    """
    rng = np.random.default_rng(seed)
    top = main.column("ts").cast(pa.int64()).to_numpy().max()
    first = main.column("ts").cast(pa.int64()).to_numpy().min()
    late_ts = first + rng.integers(0, (top - first) // 2, n_late)
    ok_ts = top + 1 + np.arange(n_ok, dtype=np.int64) * 150
    ts = np.concatenate([late_ts, ok_ts])
    late = np.concatenate([np.ones(n_late, bool), np.zeros(n_ok, bool)])
    # Late rows go to random places; the on-time rows keep their order (no disorder).
    keys = np.concatenate([rng.random(n_late) * n_ok, np.arange(n_ok, dtype=float) + 0.5])
    order = np.argsort(keys, kind="stable")
    n = len(ts)
    return pa.table(
        {
            "id": (np.arange(n, dtype=np.int64) + 100_000)[order],
            "auction": rng.integers(0, 7, n)[order],
            "bidder": rng.integers(0, 25, n)[order],
            "price": rng.integers(1, 1000, n)[order],
            "amount": np.round(rng.random(n) * 100, 3)[order],
            "channel": np.array(["web", "app"])[rng.integers(0, 2, n)][order],
            "ts": pa.array(ts[order], pa.int64()).cast(pa.timestamp("ms")),
            "late": late[order],
        },
        schema=SCHEMA,
    )


def write_dataset(directory: Path, *, with_late: bool = False, rows: int = 360) -> Path:
    """Parquet files of the bids under ``directory`` (read in name order)."""
    directory.mkdir(parents=True, exist_ok=True)
    main = bids(rows)
    pq.write_table(main, directory / "part-0.parquet")
    if with_late:
        pq.write_table(late_bids(main), directory / "part-1.parquet")
    return directory
