"""Idle inputs: a source instance without rows stops holding back the watermark once
'table.exec.source.idle-timeout' has passed, so windows close on the other instances' time.
"""

from __future__ import annotations

import time
import uuid

import pyarrow as pa
import pytest

import streamsql
from streamsql.connectors.memory import stream
from streamsql.runtime.operators import ResultBuffer

QUERY = (
    "SELECT window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), "
    "INTERVAL '10' SECOND)) GROUP BY window_start, window_end"
)


def _session(name: str, idle_timeout: str, parallelism: int = 2):
    session = streamsql.connect(settings={"table.exec.source.idle-timeout": idle_timeout})
    session.execute(
        f"CREATE TABLE bids (id BIGINT, ts TIMESTAMP(3), "
        f"WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'memory', "
        f"'name' = '{name}', 'scan.parallelism' = '{parallelism}')"
    )
    return session


def _rows(start_s: int, stop_s: int) -> list[dict]:
    return [{"id": s, "ts": s * 1000} for s in range(start_s, stop_s)]


def _run_for(session, seconds: float, *, until_rows: int | None = None):
    """Run QUERY for up to ``seconds`` (or until ``until_rows`` rows came out)."""
    handle = session.sql(QUERY)
    results = ResultBuffer(handle.schema)
    driver = session.driver(handle.planned, results)
    steps = driver.steps()
    out: list[pa.RecordBatch] = []
    deadline = time.monotonic() + seconds
    for _ in steps:
        out += results.drain()
        got = sum(b.num_rows for b in out)
        if time.monotonic() > deadline or (until_rows is not None and got >= until_rows):
            break
    steps.close()
    table = pa.Table.from_batches(out, schema=handle.schema)
    return table.to_pydict(), driver.job.result()


@pytest.fixture
def name():
    n = f"idle-{uuid.uuid4().hex}"
    yield n
    stream(n).reset()


def test_a_quiet_instance_holds_windows_open_without_a_timeout(name):
    session = _session(name, "0 ms")
    stream(name).push(_rows(0, 25))  # push 0 goes to instance 0; instance 1 gets nothing
    out, result = _run_for(session, 0.3)
    assert out == {"window_start": [], "n": []}
    # The source task also runs the aggregate's local phase.
    assert result.held_back_by() == ["[1] Source: bids -> LocalWindowAggregate #1"]
    assert not result.idle


def test_windows_close_because_the_quiet_instance_times_out(name):
    session = _session(name, "50 ms")
    stream(name).push(_rows(0, 25))  # watermark 24 s on instance 0
    out, result = _run_for(session, 5.0, until_rows=2)
    assert out["n"] == [10, 10]  # [0, 10) and [10, 20); [20, 30) waits for 29.999 s
    assert any(label.endswith("#1") for label in result.idle)


def test_an_idle_instance_counts_again_when_rows_come(name):
    session = _session(name, "200 ms")
    s = stream(name)
    s.push(_rows(0, 25))  # instance 0: watermark 24 s
    handle = session.sql(QUERY)
    results = ResultBuffer(handle.schema)
    driver = session.driver(handle.planned, results)
    windows = [i for i in driver.job.all_instances() if "Window" in i.label and not i.reader]
    steps = driver.steps()
    seen: list[int] = []
    woke = None
    deadline = time.monotonic() + 5.0
    for _ in steps:
        seen += [n for b in results.drain() for n in b.column("n").to_pylist()]
        if woke is None and seen == [10, 10]:  # instance 1 went idle, 24 s passed
            s.push(_rows(25, 27))  # push 1 -> instance 1, watermark 25 s
            woke = time.monotonic()
        elif woke is not None and s.pushes == 2:
            s.push(_rows(27, 45))  # push 2 -> instance 0, watermark 43 s
        elif woke is not None and time.monotonic() - woke < 0.1:
            # Active again: instance 1's 25 s holds the windows back, not 43 s.
            assert all(w.watermark < 30_000 for w in windows)
        if len(seen) >= 4 or time.monotonic() > deadline:
            break
    steps.close()
    assert seen == [10, 10, 10, 10]  # once instance 1 is idle again, 43 s closes 20-40 s


def test_an_idle_input_does_not_stop_the_end_of_a_bounded_stream(name):
    session = _session(name, "10 ms")
    s = stream(name)
    s.push(_rows(0, 25))
    s.end()
    out, _ = _run_for(session, 5.0, until_rows=3)
    assert out["n"] == [10, 10, 5]


def test_idle_timeout_must_be_a_duration():
    with pytest.raises(streamsql.StreamSQLError, match="idle-timeout"):
        streamsql.connect(settings={"table.exec.source.idle-timeout": "soon"})


def test_explain_names_the_idle_timeout(name):
    session = _session(name, "250 ms")
    plan = session.explain(QUERY)
    assert "watermark: generated from ts: ts - INTERVAL '1' SECOND; idle after 250 ms" in plan
    assert "Task 1: Source: bids" in plan and "[parallelism=2]" in plan


def test_a_stopped_job_without_output_says_what_holds_it_back(name):
    from streamsql.cli import _no_output_hints

    session = _session(name, "0 ms")
    stream(name).push(_rows(0, 25))
    _, result = _run_for(session, 0.2)
    text = "\n".join(_no_output_hints(result))
    assert "no rows were written" in text
    assert "held back by: [1] Source: bids -> LocalWindowAggregate #1" in text
    assert "[1] Source: bids -> LocalWindowAggregate #0" in text
    assert "watermark 1970-01-01T00:00:23" in text
    assert "table.exec.source.idle-timeout" in text
