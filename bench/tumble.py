"""Benchmark: a 10-second TUMBLE count(*), max(price) by auction over 5 M bids.

Times ``streamsql run`` (parquet source -> window aggregate -> blackhole sink) and, on the
same file, DuckDB's batch GROUP BY; prints events/s for both and their ratio.

    python bench/tumble.py [--rows 5000000] [-p 1] [--batch-size 65536] [--repeat 3]
        [--scan-parallelism N] [--runtime threads|deterministic]

The file is one parquet file; with -p N it is read by N source instances (each a range of
its rows) unless --scan-parallelism says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import bids_file, duckdb_seconds, run_cli

QUERY = """
CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'parquet',
    'scan.parallelism' = '{scan}');

CREATE TABLE out (
    window_start TIMESTAMP(3), window_end TIMESTAMP(3), auction BIGINT, bids BIGINT, top BIGINT
) WITH ('connector' = 'blackhole');

INSERT INTO out
SELECT window_start, window_end, auction, COUNT(*), MAX(price)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, auction;
"""

DUCKDB = """
SELECT time_bucket(INTERVAL 10 SECOND, ts) AS window_start, auction, count(*), max(price)
FROM read_parquet('{path}') GROUP BY ALL
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("-p", "--parallelism", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scan-parallelism", type=int, default=None, help="default: -p")
    ap.add_argument("--runtime", choices=("threads", "deterministic"), default=None)
    args = ap.parse_args()
    scan = args.scan_parallelism or args.parallelism

    path = bids_file(args.rows)
    extra = ["-p", str(args.parallelism)]
    if args.batch_size:
        extra += ["--set", f"execution.batch-size={args.batch_size}"]
    if args.runtime:
        extra += ["--set", f"execution.runtime={args.runtime}"]
    runs = [run_cli(QUERY.format(path=path, scan=scan), *extra) for _ in range(args.repeat)]
    wall = min(r[0] for r in runs)
    job = min(r[1] for r in runs)
    theirs = duckdb_seconds(DUCKDB.format(path=path))
    rows = args.rows
    runtime = args.runtime or "default runtime"
    print(
        f"rows: {rows:,}  parallelism: {args.parallelism}  scan parallelism: {scan}  "
        f"({runtime})  best of {args.repeat}"
    )
    print(f"streamsql job     : {job:6.2f} s  {rows / job / 1e6:6.2f} M events/s")
    print(f"streamsql process : {wall:6.2f} s  {rows / wall / 1e6:6.2f} M events/s (with start-up)")
    print(f"duckdb batch      : {theirs:6.2f} s  {rows / theirs / 1e6:6.2f} M events/s")
    print(f"ratio streamsql/duckdb: {theirs / job:.2f} (job), {theirs / wall:.2f} (process)")


if __name__ == "__main__":
    main()
