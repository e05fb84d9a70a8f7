"""Checkpoints as a user meets them on the command line: resuming, a changed query,
savepoints (taken while a job runs, and on the way out), the listing, EXPLAIN.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.checkpoint.recovery import bids, run

SCRIPT = """
CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '0.5' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'parquet');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
SET 'execution.batch-size' = '500';
SET 'execution.checkpointing.interval' = '2000 rows';
INSERT INTO out SELECT window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '{size}' SECOND))
WHERE price > 0
GROUP BY window_start, window_end;
"""

# An unbounded job: a generator of one row per millisecond of event time.
ENDLESS = """
CREATE TABLE t (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id, 3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen', 'rows-per-second' = '20000',
      'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '100000000');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
SET 'execution.checkpointing.interval' = '1 s';
INSERT INTO out SELECT window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end;
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamsql.cli", *args], capture_output=True, text=True, timeout=120
    )


def script(tmp_path: Path, size: int = 2) -> Path:
    data = tmp_path / "bids.parquet"
    if not data.exists():
        bids(data, rows=6000)
    path = tmp_path / f"job{size}.sql"
    path.write_text(SCRIPT.format(data=data, out=tmp_path / "out", size=size))
    return path


def test_a_restarted_job_says_where_it_went_on_from(tmp_path):
    job, state = script(tmp_path), tmp_path / "state"
    assert run(job, state, crash_at="checkpoint:2").returncode == -9
    done = run(job, state)
    assert done.returncode == 0, done.stderr
    listed = cli("checkpoints", str(state))
    assert "final" in listed.stdout and "checkpoint" in listed.stdout
    again = subprocess.run(
        [sys.executable, "-m", "streamsql.cli", "run", str(job), "--state-dir", str(state)],
        capture_output=True,
        text=True,
    )
    assert "restored from checkpoint" in again.stderr
    assert "0 rows read" in again.stderr  # the input was read to its end already


def test_a_changed_query_is_refused_unless_allowed(tmp_path):
    state = tmp_path / "state"
    assert run(script(tmp_path, 2), state, crash_at="checkpoint:2").returncode == -9
    changed = run(script(tmp_path, 3), state)
    assert changed.returncode == 1
    assert "query of job 'streamsql-1' changed since checkpoint" in changed.stderr
    assert "--allow-query-change" in changed.stderr
    forced = subprocess.run(
        [
            sys.executable, "-m", "streamsql.cli", "run", str(script(tmp_path, 3)),
            "--state-dir", str(state), "--allow-query-change", "-q",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr


def test_an_unknown_checkpoint_is_refused_before_the_job_starts(tmp_path):
    state = tmp_path / "state"
    assert run(script(tmp_path), state).returncode == 0
    proc = cli("run", str(script(tmp_path)), "--state-dir", str(state), "--from-checkpoint", "999")
    assert proc.returncode == 1
    assert "there is no checkpoint 999" in proc.stderr and "checkpoints there:" in proc.stderr


def test_explain_states_the_guarantee(tmp_path):
    job = script(tmp_path)
    without = cli("explain", str(job)).stdout
    assert "guarantee: none after a crash (no checkpoints)" in without
    state = str(tmp_path / "state")
    exact = cli("explain", str(job), "--state-dir", state).stdout
    assert "delivery: exactly-once (files published at checkpoints)" in exact
    assert "guarantee: exactly-once end to end (checkpoints EXACTLY_ONCE every 2,000 rows)" in exact
    loose = cli("explain", str(job), "--state-dir", state, "--set",
                "execution.checkpointing.mode=AT_LEAST_ONCE").stdout  # fmt: skip
    assert "guarantee: at-least-once end to end" in loose
    printed = tmp_path / "print.sql"
    printed.write_text(
        job.read_text().replace(
            "'filesystem', 'path' = '" + str(tmp_path / "out") + "', 'format' = 'csv'", "'print'"
        )
    )
    weakest = cli("explain", str(printed), "--state-dir", state).stdout
    assert "delivery: at-least-once (print does not commit with checkpoints" in weakest
    assert "guarantee: at-least-once end to end" in weakest


def test_a_damaged_checkpoint_is_reported_not_restored(tmp_path):
    job, state = script(tmp_path), tmp_path / "state"
    assert run(job, state, crash_at="checkpoint:3").returncode == -9
    for file in state.glob("chk-*/*.arrow"):
        with open(file, "ab") as f:
            f.write(b"\x00")
    proc = run(job, state)
    assert proc.returncode == 1
    assert "is damaged" in proc.stderr and "Traceback" not in proc.stderr
    assert "--from-checkpoint" in proc.stderr  # the way out: an older one


def test_savepoints_while_running_and_on_the_way_out(tmp_path):
    job = tmp_path / "endless.sql"
    job.write_text(ENDLESS.format(out=tmp_path / "out"))
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsql.cli", "run", str(job), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (state / "job.pid").exists())
        time.sleep(1.0)
        taken = cli("savepoint", str(state))
        assert taken.returncode == 0, taken.stderr
        assert taken.stdout.startswith("savepoint ")
        proc.send_signal(signal.SIGINT)  # Ctrl-C: stop with a savepoint
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping with a savepoint" in err
    kinds = [
        line.split()[3]
        for line in cli("checkpoints", str(state)).stdout.splitlines()
        if "│" in line and "savepoint" in line
    ]
    assert len(kinds) == 2  # the asked-for one and the one taken on the way out
    visible = [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]
    assert visible  # what the savepoints committed


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
