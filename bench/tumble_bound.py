"""The speed-up two cores allow the tumble job: its least work, hand-written in pyarrow.

``bench/tumble.py``'s job (a 10-second TUMBLE, COUNT(*) and MAX(price) per auction over 5 M
bids) done by plain pyarrow with none of an engine's work: no watermarks, channels, state,
metrics or late-row checks. With one thread it decodes the file (on pyarrow's pool, as
``-p 1`` does), aggregates each batch per (window, auction) and merges the partials at the
end. With two threads each decodes its stripes of the file (the row ranges ``-p 2``'s scan
instances read) and aggregates them, routes its partials by a hash of the auction, and then
each merges its half of the partials.

Rounds take turns between the two and ``streamsql run -p 1`` and ``-p 2``, so that a change
in the machine's load weighs on all alike; every run is a fresh process, timed without its
start-up, as the CLI times a job. The two-thread time against ``-p 1``'s is the most a
two-core run of the job could gain here.

    python bench/tumble_bound.py [--rows 5000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import bids_file, run_cli
from bench.tumble import QUERY
from streamsql.connectors.fs_source import _blocks, _cuts

BATCH = 65536
COLUMNS = ["auction", "price", "ts"]
WINDOW_MS = 10_000


def partials(batch: pa.RecordBatch) -> pa.Table:
    """COUNT(*) and MAX(price) per (window end, auction) of one batch."""
    ts = batch.column("ts").cast(pa.int64()).to_numpy()
    ends = ts - ts % WINDOW_MS + WINDOW_MS
    rows = pa.table({"we": ends, "k": batch.column("auction"), "p": batch.column("price")})
    return rows.group_by(["we", "k"], use_threads=False).aggregate(
        [([], "count_all"), ("p", "max")]
    )


def merge(parts: list[pa.Table]) -> pa.Table:
    together = pa.concat_tables(parts)
    return together.group_by(["we", "k"], use_threads=False).aggregate(
        [("count_all", "sum"), ("p_max", "max")]
    )


def one_thread(path: Path) -> int:
    with pq.ParquetFile(path, memory_map=True) as pf:
        batches = pf.iter_batches(batch_size=BATCH, columns=COLUMNS, use_threads=True)
        return merge([partials(b) for b in batches]).num_rows


def stripes(path: Path, sharers: int) -> list[list[tuple[int, int]]]:
    """Each sharer's row ranges of the file, cut as ``-p 2``'s scan instances cut them."""
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    mine: list[list[tuple[int, int]]] = [[] for _ in range(sharers)]
    for block in _blocks(sizes, sharers, BATCH * sharers):
        cuts = _cuts(block, sharers)
        for i in range(sharers):
            if cuts[i + 1] > cuts[i]:
                mine[i].append((cuts[i], cuts[i + 1]))
    return mine


def read_rows(pf: pq.ParquetFile, first: int, end: int):
    """The batches of rows [first, end), decoded from the row group holding ``first``."""
    starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    group = int(np.searchsorted(starts, first, side="right")) - 1
    row = int(starts[group])
    groups = range(group, pf.num_row_groups)
    batches = pf.iter_batches(BATCH, row_groups=groups, columns=COLUMNS, use_threads=False)
    for batch in batches:
        lo, hi = max(first - row, 0), min(end - row, batch.num_rows)
        row += batch.num_rows
        if hi > lo:
            yield batch.slice(lo, hi - lo)
        if row >= end:
            return


def two_threads(path: Path, parts: list[list[tuple[int, int]]]) -> int:
    routed: list[list[list[pa.Table]]] = [[[], []], [[], []]]  # [producer][consumer]

    def produce(i: int) -> None:
        with pq.ParquetFile(path, memory_map=True) as pf:
            for first, end in parts[i]:
                for batch in read_rows(pf, first, end):
                    table = partials(batch)
                    keys = table.column("k").to_numpy().astype(np.uint64)
                    owner = (keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(63)
                    for j in (0, 1):
                        routed[i][j].append(table.take(pa.array(np.flatnonzero(owner == j))))

    merged = [0, 0]

    def consume(j: int) -> None:
        merged[j] = merge(routed[0][j] + routed[1][j]).num_rows

    for body in (produce, consume):
        threads = [threading.Thread(target=body, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return sum(merged)


def timed_in_fresh_process(threads: int, rows: int) -> float:
    """Seconds of the hand-written job in a process of its own (imports not counted), as
    ``streamsql run`` is timed: each run pays its own first-use costs.
    """
    cmd = [sys.executable, __file__, "--rows", str(rows), "--run", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out)


def run_here(threads: int, rows: int) -> None:
    path = bids_file(rows)
    parts = stripes(path, 2)
    began = time.perf_counter()
    one_thread(path) if threads == 1 else two_threads(path, parts)
    print(time.perf_counter() - began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--run", type=int, choices=(1, 2), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        run_here(args.run, args.rows)
        return
    path = bids_file(args.rows)
    assert one_thread(path) == two_threads(path, stripes(path, 2))  # the same windows
    runs: dict[str, Callable[[], float]] = {
        "pyarrow, 1 thread": lambda: timed_in_fresh_process(1, args.rows),
        "pyarrow, 2 threads": lambda: timed_in_fresh_process(2, args.rows),
    }
    for p in (1, 2):
        query = QUERY.format(path=path, scan=p)
        runs[f"streamsql -p {p}"] = lambda q=query, p=p: run_cli(q, "-p", str(p)).job
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, job in runs.items():
            times[name].append(job())
    print(f"rows: {args.rows:,}  {args.repeat} rounds taking turns, each run a fresh process")
    print("                      best s  median s")
    for name, ts in times.items():
        print(f"{name:20s} {min(ts):8.3f} {statistics.median(ts):9.3f}")
    ours, bound = times["streamsql -p 1"], times["pyarrow, 2 threads"]
    print(
        f"most a 2-core run could gain over streamsql -p 1: {min(ours) / min(bound):.2f}x (best), "
        f"{statistics.median(ours) / statistics.median(bound):.2f}x (median)"
    )


if __name__ == "__main__":
    main()
