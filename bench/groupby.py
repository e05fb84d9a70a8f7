"""Benchmark: an unbounded GROUP BY auction with COUNT(*), MAX(price), AVG(price) over 5 M
bids, and a Top-3 bids per auction; each beside DuckDB's batch time on the same file.

    python bench/groupby.py [--rows 5000000] [--query groupby|topn|both] [-p 1]
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
"""

QUERIES = {
    "groupby": (
        """
CREATE TABLE out (auction BIGINT, bids BIGINT, top BIGINT, mean BIGINT)
WITH ('connector' = 'blackhole');
INSERT INTO out
SELECT auction, COUNT(*), MAX(price), AVG(price) FROM bids GROUP BY auction;
""",
        "SELECT auction, count(*), max(price), avg(price) FROM read_parquet('{path}') "
        "GROUP BY auction",
    ),
    "topn": (
        """
CREATE TABLE out (auction BIGINT, bidder BIGINT, price BIGINT, rn BIGINT)
WITH ('connector' = 'blackhole');
INSERT INTO out
SELECT auction, bidder, price, rn FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bids
) WHERE rn <= 3;
""",
        "SELECT * FROM (SELECT auction, bidder, price, row_number() OVER (PARTITION BY auction "
        "ORDER BY price DESC) AS rn FROM read_parquet('{path}')) WHERE rn <= 3",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--query", choices=["groupby", "topn", "both"], default="both")
    ap.add_argument("-p", "--parallelism", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = bids_file(args.rows)
    names = ["groupby", "topn"] if args.query == "both" else [args.query]
    for name in names:
        ours_sql, theirs_sql = QUERIES[name]
        script = SOURCE.format(path=path) + ours_sql
        runs = [run_cli(script, "-p", str(args.parallelism)) for _ in range(args.repeat)]
        job = min(r[1] for r in runs)
        theirs = duckdb_seconds(theirs_sql.format(path=path))
        rows = args.rows
        print(f"{name}: rows {rows:,}, parallelism {args.parallelism}, best of {args.repeat}")
        print(f"  streamsql job : {job:6.2f} s  {rows / job / 1e6:6.2f} M events/s")
        print(f"  duckdb batch  : {theirs:6.2f} s  {rows / theirs / 1e6:6.2f} M events/s")
        print(f"  ratio streamsql/duckdb: {theirs / job:.2f}")


if __name__ == "__main__":
    main()
