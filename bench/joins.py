"""Benchmark: joins on 5 M bids — an interval self-join, a TUMBLE window self-join and a
lookup join against a 10,000-row table — each beside DuckDB's batch join on the same data.

    python bench/joins.py [--rows 5000000] [--query interval,window,lookup] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import DATA, bids_file, duckdb_seconds, run_cli

SOURCE = """
CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3), pt AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'parquet');
CREATE TABLE auctions (id BIGINT, seller BIGINT, category INT)
WITH ('connector' = 'filesystem', 'path' = '{dim}', 'format' = 'parquet');
CREATE TABLE out (a BIGINT, b BIGINT, c BIGINT) WITH ('connector' = 'blackhole');
"""

W = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
D_W = "(SELECT *, time_bucket(INTERVAL 10 SECOND, ts) AS ws FROM bids)"

QUERIES = {
    # Each bid meets the bids of the same auction and bidder within the next second
    # (itself, and rarely another): about one output row per input row.
    "interval": (
        "INSERT INTO out SELECT b1.auction, b1.price, b2.price FROM bids b1 JOIN bids b2 "
        "ON b1.auction = b2.auction AND b1.bidder = b2.bidder "
        "AND b2.ts BETWEEN b1.ts AND b1.ts + INTERVAL '1' SECOND;",
        "SELECT b1.auction, b1.price, b2.price FROM bids b1 JOIN bids b2 "
        "ON b1.auction = b2.auction AND b1.bidder = b2.bidder "
        "AND b2.ts BETWEEN b1.ts AND b1.ts + INTERVAL 1 SECOND",
    ),
    "window": (
        f"INSERT INTO out SELECT l.auction, l.price, r.price FROM (SELECT * FROM {W}) l "
        f"JOIN (SELECT * FROM {W}) r ON l.auction = r.auction AND l.bidder = r.bidder "
        "AND l.window_start = r.window_start AND l.window_end = r.window_end;",
        f"SELECT l.auction, l.price, r.price FROM {D_W} l JOIN {D_W} r "
        "ON l.auction = r.auction AND l.bidder = r.bidder AND l.ws = r.ws",
    ),
    "lookup": (
        "INSERT INTO out SELECT b.auction, b.price, d.seller FROM bids b "
        "JOIN auctions FOR SYSTEM_TIME AS OF b.pt AS d ON b.auction = d.id;",
        "SELECT b.auction, b.price, d.seller FROM bids b JOIN auctions d ON b.auction = d.id",
    ),
}


def dim_file(auctions: int = 10_000) -> Path:
    path = DATA / f"auctions-{auctions}.parquet"
    if not path.exists():
        rng = np.random.default_rng(7)
        pq.write_table(
            pa.table(
                {
                    "id": np.arange(auctions, dtype=np.int64),
                    "seller": rng.integers(0, 1000, auctions),
                    "category": rng.integers(0, 20, auctions).astype(np.int32),
                }
            ),
            path,
        )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--query", default="interval,window,lookup")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path, dim = bids_file(args.rows), dim_file()
    rows = args.rows
    for name in args.query.split(","):
        ours_sql, theirs_sql = QUERIES[name]
        script = SOURCE.format(path=path, dim=dim) + ours_sql
        job = min(run_cli(script)[1] for _ in range(args.repeat))
        theirs = duckdb_seconds(theirs_sql, {"bids": str(path), "auctions": str(dim)})
        print(
            f"{name:8s} streamsql {job:6.2f} s {rows / job / 1e6:6.2f} M ev/s | duckdb "
            f"{theirs:6.2f} s {rows / theirs / 1e6:6.2f} M ev/s | ratio {theirs / job:.2f}"
        )


if __name__ == "__main__":
    main()
