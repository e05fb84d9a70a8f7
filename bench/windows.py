"""Benchmark: window shapes on 5 M bids — TUMBLE(10 s), HOP(10 s, slide 2 s),
HOP(5 min, slide 5 s) and SESSION(gap 2 s) per bidder — each beside DuckDB's batch query.

    python bench/windows.py [--rows 5000000] [--query tumble,hop,hop5m,session] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import bids_file, duckdb_seconds, run_cli

SOURCE = """
CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'parquet');
CREATE TABLE out (window_start TIMESTAMP(3), k BIGINT, n BIGINT, top BIGINT)
WITH ('connector' = 'blackhole');
"""

QUERIES = {
    "tumble": (
        "INSERT INTO out SELECT window_start, auction, COUNT(*), MAX(price) FROM "
        "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) "
        "GROUP BY window_start, window_end, auction;",
        "SELECT time_bucket(INTERVAL 10 SECOND, ts), auction, count(*), max(price) "
        "FROM bids GROUP BY ALL",
    ),
    "hop": (
        "INSERT INTO out SELECT window_start, auction, COUNT(*), MAX(price) FROM "
        "TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) "
        "GROUP BY window_start, window_end, auction;",
        "SELECT time_bucket(INTERVAL 2 SECOND, ts) - k * INTERVAL 2 SECOND AS ws, auction, "
        "count(*), max(price) FROM bids, range(5) r(k) GROUP BY ALL",
    ),
    "hop5m": (
        "INSERT INTO out SELECT window_start, auction, COUNT(*), MAX(price) FROM "
        "TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '5' MINUTE)) "
        "GROUP BY window_start, window_end, auction;",
        # DuckDB by panes too (exploding 60x would be unfair to it): 5 s panes, then windows.
        "WITH panes AS (SELECT time_bucket(INTERVAL 5 SECOND, ts) AS p, auction, "
        "count(*) AS c, max(price) AS m FROM bids GROUP BY ALL) "
        "SELECT p - k * INTERVAL 5 SECOND AS ws, auction, sum(c), max(m) "
        "FROM panes, range(60) r(k) GROUP BY ALL",
    ),
    "session": (
        "INSERT INTO out SELECT window_start, bidder, COUNT(*), MAX(price) FROM "
        "TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(ts), INTERVAL '2' SECOND)) "
        "GROUP BY window_start, window_end, bidder;",
        "WITH o AS (SELECT bidder, ts, price, CASE WHEN ts - lag(ts) OVER w > INTERVAL 2 SECOND "
        "OR lag(ts) OVER w IS NULL THEN 1 ELSE 0 END AS s FROM bids WINDOW w AS "
        "(PARTITION BY bidder ORDER BY ts)), g AS (SELECT *, sum(s) OVER (PARTITION BY bidder "
        "ORDER BY ts) AS sid FROM o) SELECT bidder, sid, min(ts), count(*), max(price) FROM g "
        "GROUP BY bidder, sid",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--query", default="tumble,hop,hop5m,session")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = bids_file(args.rows)
    rows = args.rows
    results = {}
    for name in args.query.split(","):
        ours_sql, theirs_sql = QUERIES[name]
        script = SOURCE.format(path=path) + ours_sql
        job = min(run_cli(script)[1] for _ in range(args.repeat))
        theirs = duckdb_seconds(theirs_sql, {"bids": str(path)})
        results[name] = job
        print(
            f"{name:8s} streamsql {job:6.2f} s {rows / job / 1e6:6.2f} M ev/s | duckdb "
            f"{theirs:6.2f} s {rows / theirs / 1e6:6.2f} M ev/s | ratio {theirs / job:.2f}"
        )
    if "tumble" in results:
        for name in ("hop", "hop5m", "session"):
            if name in results:
                share = results["tumble"] / results[name]
                print(f"{name} throughput / tumble throughput: {share:.2f}")


if __name__ == "__main__":
    main()
