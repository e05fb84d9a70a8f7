"""Benchmark: the tumble query of bench/tumble.py without checkpoints, with one every 10 s
and with one every 100,000 rows; and the time to restore after a crash.

    python bench/checkpoints.py [--rows 5000000] [-p 1] [--repeat 3]

Each run is ``streamsql run`` with a fresh ``--state-dir``. The restore time is what the
restarted job reports ("restored from checkpoint N in X ms") after a run killed (SIGKILL)
at its 3rd checkpoint of the 100,000-row interval.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import DATA, bids_file, run_cli
from bench.tumble import QUERY


def timed(script: str, state: str | None, interval: str | None, p: int) -> float:
    args = ["-p", str(p)]
    if state is not None:
        args += ["--state-dir", state]
    if interval is not None:
        args += ["--set", f"execution.checkpointing.interval={interval}"]
    return run_cli(script, *args)[1]


def restore_ms(script: str, p: int) -> tuple[float, str]:
    """Kill a run at its 3rd checkpoint, restart it; the restart's restore time."""
    path = DATA / "bench-checkpoint.sql"
    path.write_text(script)
    with tempfile.TemporaryDirectory() as state:
        cmd = [sys.executable, "-m", "streamsql.cli", "run", str(path), "-p", str(p)]
        cmd += ["--state-dir", state, "--set", "execution.checkpointing.interval=100000 rows"]
        env = {**os.environ, "STREAMSQL_CRASH_AT": "checkpoint:3"}
        first = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if first.returncode != -9:
            raise SystemExit(f"the run was not killed at its 3rd checkpoint:\n{first.stderr}")
        again = subprocess.run(cmd, capture_output=True, text=True)
        found = re.search(
            r"restored from checkpoint (\d+) \(([^)]+)\) in ([0-9.]+) ms", again.stderr
        )
        if again.returncode or found is None:
            raise SystemExit(f"the restart failed:\n{again.stderr}")
        return float(found.group(3)), found.group(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("-p", "--parallelism", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    p = args.parallelism
    script = QUERY.format(path=bids_file(args.rows), scan=p)

    # The three set-ups take turns, so that a change in the machine's load during the
    # benchmark weighs on all three alike; each reports its best run.
    intervals = (None, "10 s", "100000 rows")
    runs: dict[str | None, list[float]] = {i: [] for i in intervals}
    for _ in range(args.repeat):
        for interval in intervals:
            with tempfile.TemporaryDirectory() as state:
                runs[interval].append(timed(script, state if interval else None, interval, p))
    base, every_10s, every_100k = (min(runs[i]) for i in intervals)
    restored, size = restore_ms(script, p)
    rows = args.rows
    print(f"rows: {rows:,}  parallelism: {p}  best of {args.repeat}")
    print(f"no checkpoints          : {base:6.2f} s  {rows / base / 1e6:6.2f} M events/s")
    for label, t in (("checkpoint every 10 s", every_10s), ("every 100,000 rows", every_100k)):
        slower = (t / base - 1) * 100
        print(f"{label:<24}: {t:6.2f} s  {rows / t / 1e6:6.2f} M events/s  ({slower:+.0f} %)")
    print(f"restore after a crash   : {restored:6.0f} ms (checkpoint of {size})")


if __name__ == "__main__":
    main()
