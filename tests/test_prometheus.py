"""The Prometheus endpoint: the text format parses, and a scrape while a job runs shows
its counters growing.
"""

from __future__ import annotations

import itertools
import math
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

import streamsql
from streamsql.connectors.memory import stream
from streamsql.runtime.job import JobResult
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.prometheus import MetricsServer, exposition
from streamsql.runtime.timeutil import MAX_WATERMARK

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = rf'({NAME})="((?:[^"\\]|\\.)*)"'
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL},?)*)\}})? (\S+)")
COMMENT = re.compile(rf"# (HELP|TYPE) ({NAME}) (.+)")

Sample = tuple[str, dict[str, str], float]


def parse(text: str) -> tuple[dict[str, str], list[Sample]]:
    """Metric types by family and the samples, checking the line format as it goes."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples: list[Sample] = []
    for line in text.splitlines():
        if line.startswith("#"):
            m = COMMENT.fullmatch(line)
            assert m, f"bad comment line: {line!r}"
            if m.group(1) == "HELP":
                helped.add(m.group(2))
            else:
                assert m.group(3) in ("counter", "gauge"), line
                assert m.group(2) not in types, f"TYPE twice for {m.group(2)}"
                types[m.group(2)] = m.group(3)
            continue
        m = SAMPLE.fullmatch(line)
        assert m, f"bad sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(m.lastindex or 0)
        assert name in types and name in helped, f"{name} has no TYPE or HELP before it"
        if types[name] == "counter":
            assert name.endswith("_total"), name
        samples.append((name, dict(re.findall(LABEL, labels)), float(value)))
    keys = [(n, tuple(sorted(lab.items()))) for n, lab, _ in samples]
    assert len(keys) == len(set(keys)), "a series appears twice"
    return types, samples


def values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    return [
        v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())
    ]


def test_exposition_parses():
    ops = [
        OperatorMetrics(1, 0, "Scan", rows_in=10, rows_out=10, busy_s=0.5, watermark=5_000),
        OperatorMetrics(2, 0, 'Odd "name"\\', rows_in=10, blocked_s=0.25, watermark=MAX_WATERMARK),
    ]
    ops[1].record_state({"window_agg_state_rows": 4})
    result = JobResult("job-1", 2.0, ops, {"t": {"rows_read": 10}})
    types, samples = parse(exposition([(result, True)]))
    assert types["streamsql_operator_rows_in_total"] == "counter"
    assert types["streamsql_operator_utilization_ratio"] == "gauge"
    labels = {"job": "job-1", "task": "1", "node": "0", "operator": "Scan", "instance": "0"}
    assert values(samples, "streamsql_operator_rows_in_total", **labels) == [10]
    assert values(samples, "streamsql_operator_utilization_ratio", **labels) == [0.25]
    assert values(samples, "streamsql_operator_watermark_milliseconds", task="1") == [5000]
    assert values(samples, "streamsql_operator_watermark_milliseconds", task="2") == [math.inf]
    assert values(samples, "streamsql_operator_backpressured_ratio", task="2") == [0.125]
    assert values(samples, "streamsql_operator_state_rows", task="2") == [4]
    assert values(samples, "streamsql_operator_state_rows", task="1") == []  # stateless
    assert values(samples, "streamsql_source_rows_read_total", table="t") == [10]
    assert values(samples, "streamsql_job_running") == [1]
    # A label value with quotes and a backslash comes back escaped.
    [odd] = [lab for n, lab, _ in samples if n == "streamsql_operator_rows_in_total"][1:]
    assert odd["operator"] == 'Odd \\"name\\"\\\\'


def scrape(server: MetricsServer) -> list[Sample]:
    with urllib.request.urlopen(server.url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(response.read().decode())[1]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


_streams = itertools.count()


@pytest.mark.parametrize("runtime", ["threads", "deterministic"])
def test_a_live_scrape_sees_counters_grow(runtime: str):
    name = f"prometheus-{next(_streams)}"
    source = stream(name, pa.schema([("k", pa.int64()), ("ts", pa.timestamp("ms"))]))
    session = streamsql.connect(settings={"execution.runtime": runtime})
    session.execute(
        f"""
        CREATE TABLE src (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
            WITH ('connector' = 'memory', 'name' = '{name}');
        CREATE TABLE out (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
        """
    )
    server = MetricsServer(port=0).start()
    session.on_job_start.append(server.watch)
    job = threading.Thread(
        target=session.execute,
        args=(
            "INSERT INTO out SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), "
            "INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end",
        ),
    )
    job.start()
    try:
        scan = {"operator": "Scan"}

        def read() -> float:
            return sum(values(scrape(server), "streamsql_operator_rows_in_total", **scan))

        source.push(pa.table({"k": [1, 2, 3], "ts": pa.array([0, 10, 20], pa.timestamp("ms"))}))
        wait_for(lambda: read() == 3)
        samples = scrape(server)
        assert values(samples, "streamsql_job_running") == [1]
        assert all(0 <= v <= 1 for v in values(samples, "streamsql_operator_utilization_ratio"))
        source.push(pa.table({"k": [1] * 5, "ts": pa.array([1500] * 5, pa.timestamp("ms"))}))
        wait_for(lambda: read() == 8)
        # The watermark passed 1 s: the first second's window closed (keys 1, 2, 3).
        sink = {"operator": "Sink"}
        wait_for(
            lambda: sum(values(scrape(server), "streamsql_operator_rows_in_total", **sink)) == 3
        )
    finally:
        source.end()
        job.join(timeout=30)
        source.reset()
    assert not job.is_alive()
    samples = scrape(server)
    assert values(samples, "streamsql_job_running") == [0]
    assert sum(values(samples, "streamsql_operator_rows_in_total", operator="Scan")) == 8
    server.close()


def test_cli_serves_metrics_while_the_job_runs(tmp_path: Path):
    script = tmp_path / "endless.sql"
    script.write_text(
        """
        CREATE TABLE t (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5000',
            'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
            'fields.id.end' = '1000000000');
        CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO out SELECT id FROM t WHERE id % 2 = 0;
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsql.cli", "run", str(script), "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        m = re.fullmatch(r"metrics: (http://127\.0\.0\.1:\d+/metrics)\n", first)
        assert m, first

        def rows_in() -> float:
            with urllib.request.urlopen(m.group(1), timeout=10) as response:
                _, samples = parse(response.read().decode())
            return sum(values(samples, "streamsql_operator_rows_in_total", operator="Scan"))

        wait_for(lambda: rows_in() > 0)
        before = rows_in()
        wait_for(lambda: rows_in() > before)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by interrupt" in err and "job finished:" in err
    assert re.search(r"^task\s+operator\s+p\s+rows in\s+rows out", err, re.M)
