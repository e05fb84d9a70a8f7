"""A query over a watched directory ('source.monitor-interval') runs until stopped, picks up
files as they appear, and emits each window as the watermark passes its end.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import streamsql
from streamsql.runtime.operators import ResultBuffer

QUERY = (
    "SELECT window_start, COUNT(*) AS n, SUM(v) AS s FROM TABLE(TUMBLE(TABLE ev, "
    "DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end"
)


def _write(directory: Path, name: str, start_s: int, stop_s: int) -> None:
    """Rows once a second in [start_s, stop_s), written under a hidden name and renamed
    into place, as a writer should.
    """
    seconds = list(range(start_s, stop_s))
    table = pa.table(
        {
            "v": pa.array(seconds, pa.int64()),
            "ts": pa.array([s * 1000 for s in seconds], pa.int64()).cast(pa.timestamp("ms")),
        }
    )
    hidden = directory / f".{name}"
    pq.write_table(table, hidden)
    hidden.rename(directory / name)


def test_windows_come_out_as_files_arrive(tmp_path):
    _write(tmp_path, "a.parquet", 0, 15)
    session = streamsql.connect()
    session.execute(
        "CREATE TABLE ev (v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' "
        f"SECOND) WITH ('connector' = 'filesystem', 'path' = '{tmp_path}', "
        "'format' = 'parquet', 'source.monitor-interval' = '20 ms')"
    )
    handle = session.sql(QUERY)
    assert not handle.planned.bounded
    results = ResultBuffer(handle.schema)
    driver = session.driver(handle.planned, results)
    seen: list[tuple[int, int]] = []
    written = {"b": False, "c": False}
    deadline = time.monotonic() + 10
    steps = driver.steps()
    for _ in steps:
        for batch in results.drain():
            n, total = batch.column("n").to_pylist(), batch.column("s").to_pylist()
            seen += list(zip(n, total, strict=True))
        if seen == [(10, 45)] and not written["b"]:
            _write(tmp_path, "b.parquet", 15, 32)  # closes [10, 20) and [20, 30)
            written["b"] = True
        if len(seen) == 3 and not written["c"]:
            _write(tmp_path, "c.parquet", 32, 45)  # closes [30, 40)
            written["c"] = True
        if len(seen) == 4 or time.monotonic() > deadline:
            break
    steps.close()
    assert seen == [(10, 45), (10, 145), (10, 245), (10, 345)]
    assert written == {"b": True, "c": True}
    # The window [40, 50) is still open: the job ran until stopped, not to an end.
    assert driver.job.result().rows_read == 45
