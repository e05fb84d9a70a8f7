"""Benchmark: a 10-second TUMBLE count(*), max(price) by auction over 5 M bids.

Times ``streamsql run`` (parquet source -> window aggregate -> blackhole sink) and, on the
same file, DuckDB's batch GROUP BY; prints events/s for both and their ratio.

    python bench/tumble.py [--rows 5000000] [-p 1] [--batch-size 65536] [--repeat 3]
        [--scan-parallelism N] [--runtime threads|deterministic]
    python bench/tumble.py --compare 1,2 [--repeat 7]

The file is one parquet file; with -p N it is read by N source instances (each its stripes
of the file's row groups) unless --scan-parallelism says otherwise.

``--compare`` runs the job at each of the given parallelisms in turn, ``--repeat`` rounds
(so that a change in the machine's load weighs on all of them alike), and prints the best
and the median job time of each, the cores it kept busy and its speed-up over the first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import CliRun, bids_file, duckdb_seconds, run_cli

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
    ap.add_argument("--compare", default=None, help="parallelisms to take turns with: 1,2")
    args = ap.parse_args()
    path = bids_file(args.rows)
    if args.compare:
        compare(args, path, [int(p) for p in args.compare.split(",")])
        return
    scan = args.scan_parallelism or args.parallelism
    runs = [run(args, path, args.parallelism, scan) for _ in range(args.repeat)]
    wall = min(r.wall for r in runs)
    job = min(r.job for r in runs)
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


def run(args: argparse.Namespace, path: Path, parallelism: int, scan: int) -> CliRun:
    extra = ["-p", str(parallelism)]
    if args.batch_size:
        extra += ["--set", f"execution.batch-size={args.batch_size}"]
    if args.runtime:
        extra += ["--set", f"execution.runtime={args.runtime}"]
    return run_cli(QUERY.format(path=path, scan=scan), *extra)


def compare(args: argparse.Namespace, path: Path, parallelisms: list[int]) -> None:
    """Take turns between the parallelisms, ``args.repeat`` rounds; each best and median."""
    runs: dict[int, list[CliRun]] = {p: [] for p in parallelisms}
    for _ in range(args.repeat):
        for p in parallelisms:
            runs[p].append(run(args, path, p, args.scan_parallelism or p))
    theirs = duckdb_seconds(DUCKDB.format(path=path))
    print(f"rows: {args.rows:,}  {args.repeat} rounds, taking turns  duckdb batch: {theirs:.2f} s")
    print(
        "  -p   best s  median s   M events/s (best)   cores   speed-up best / median   vs duckdb"
    )
    first = parallelisms[0]
    best0 = min(r.job for r in runs[first])
    median0 = statistics.median(r.job for r in runs[first])
    for p in parallelisms:
        jobs = [r.job for r in runs[p]]
        best, median = min(jobs), statistics.median(jobs)
        cores = statistics.median(r.cores for r in runs[p])
        print(
            f"{p:4d} {best:8.2f} {median:9.3f} {args.rows / best / 1e6:14.2f} {cores:13.1f}"
            f" {best0 / best:15.2f} / {median0 / median:.2f} {theirs / best:13.2f}"
        )


if __name__ == "__main__":
    main()
