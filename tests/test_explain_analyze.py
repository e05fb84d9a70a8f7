"""EXPLAIN ANALYZE: the statement runs to its end and the plan shows what each operator
(and each instance) did.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import streamsql
from streamsql.errors import PlanError
from streamsql.runtime.metrics import instance_figures

SEQ = """
CREATE TABLE t (
    id BIGINT,
    ts AS TO_TIMESTAMP_LTZ(id * 1000, 3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '20', 'rows-per-second' = '1000000',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '20');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE endless (id BIGINT) WITH ('connector' = 'datagen');
"""
WINDOWED = """INSERT INTO out
SELECT window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end"""


def figures_under(text: str, operator: str) -> dict[str, dict[str, str]]:
    """The figures table under the first plan line starting with ``operator``: per row
    label (``#0``, ``all``), each column's cell.
    """
    lines = text.split("== Physical Plan, Analyzed ==")[1].splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(operator + "("))
    headings = re.split(r"\s{2,}", lines[at + 1].strip())
    table = {}
    for line in lines[at + 2 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if not re.fullmatch(r"#\d+|all", cells[0]):
            break
        table[cells[0]] = dict(zip(headings, cells[1:], strict=True))
    return table


def share(cell: str) -> float:
    return float(cell.rstrip("%")) / 100


RUNTIMES = ["threads", "deterministic"]


@pytest.fixture(params=RUNTIMES)
def session(request):
    s = streamsql.connect(settings={"execution.runtime": request.param})
    s.execute(SEQ)
    return s


def test_rows_in_and_out_match_the_data(session):
    text = session.explain("EXPLAIN ANALYZE " + WINDOWED)
    assert "== Physical Plan, Analyzed ==" in text
    assert "job finished: 20 rows read, 3 rows written" in text
    scan = figures_under(text, "Scan")["#0"]
    assert (scan["rows in"], scan["rows out"]) == ("20", "20")
    window = figures_under(text, "WindowAggregate")["#0"]
    assert (window["rows in"], window["rows out"]) == ("20", "3")  # windows 0-9, 10-19, 20
    sink = figures_under(text, "Sink")["#0"]
    assert (sink["rows in"], sink["rows out"]) == ("3", "0")
    for row in (scan, window, sink):
        assert 0.0 <= share(row["util"]) <= 1.0
        assert share(row["headroom"]) == pytest.approx(1 - share(row["util"]), abs=0.0011)
        assert row["watermark"] == "+inf" and row["lag ms"] == "0"


def test_a_window_aggregate_shows_its_state_rows(session):
    text = session.explain("EXPLAIN ANALYZE " + WINDOWED)
    window = figures_under(text, "WindowAggregate")["#0"]
    # At the end every window fired (state 0); before the end of input the open window
    # [10 s, 20 s) held its rows.
    assert window["state"] == "0"
    assert int(window["peak"]) > 0
    assert "state" not in figures_under(text, "Scan")["#0"]  # a stateless operator


def test_explain_analyze_of_a_query_counts_its_rows(session):
    text = session.explain("SELECT id FROM t WHERE id > 5", analyze=True)
    assert figures_under(text, "Filter")["#0"]["rows out"] == "15"
    assert figures_under(text, "Collect")["#0"]["rows in"] == "15"
    assert session.last_result is not None and session.last_result.rows_read == 20


def test_explain_analyze_runs_the_insert(tmp_path):
    s = streamsql.connect()
    s.execute(SEQ.replace("'blackhole'", f"'filesystem', 'path' = '{tmp_path}', 'format' = 'csv'"))
    s.execute("EXPLAIN ANALYZE " + WINDOWED)
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert len(written.strip().splitlines()) == 3


def test_unbounded_input_is_refused(session):
    with pytest.raises(PlanError) as info:
        session.explain("EXPLAIN ANALYZE SELECT id FROM endless")
    message = str(info.value)
    assert "EXPLAIN ANALYZE runs the statement to its end" in message
    assert "unbounded input: endless" in message
    assert "number-of-rows" in message  # the hint


def test_plain_explain_does_not_run(session):
    text = session.explain(WINDOWED)
    assert "== Physical Plan ==" in text and "rows in" not in text
    assert session.last_result is None


SKEWED = """
CREATE TABLE bids (
    id BIGINT,
    ts AS TO_TIMESTAMP_LTZ(id, 3),
    WATERMARK FOR ts AS ts
) WITH ('connector' = 'datagen', 'number-of-rows' = '200000', 'rows-per-second' = '100000000',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '200000');
CREATE TABLE per_key (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
CREATE VIEW keyed AS SELECT CASE WHEN id <= 40 THEN id % 8 + 1 ELSE 0 END AS k, ts FROM bids;
"""
HOT_KEY = """EXPLAIN ANALYZE INSERT INTO per_key
SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE keyed, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY k, window_start, window_end"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_hot_key_shows_on_one_instance(runtime: str):
    settings = {"execution.runtime": runtime, "parallelism.default": "2"}
    # One phase: the rows themselves reach the aggregate's instances (a local phase would
    # pre-aggregate the hot key's rows before the exchange).
    settings["table.optimizer.agg-phase-strategy"] = "ONE_PHASE"
    s = streamsql.connect(settings=settings | {"execution.batch-size": "4096"})
    s.execute(SKEWED)
    text = s.explain(HOT_KEY)
    table = figures_under(text, "WindowAggregate")
    assert set(table) == {"all", "#0", "#1"}
    rows = {label: int(row["rows in"].replace(",", "")) for label, row in table.items()}
    assert rows["all"] == 200_000 == rows["#0"] + rows["#1"]
    hot = max(("#0", "#1"), key=rows.__getitem__)
    assert rows[hot] >= 199_960  # every row but (some of) the first 40
    assert "skew: " + hot + " received" in text
    # The per-instance figures behind the table: the hot instance did the work.
    assert s.last_result is not None
    window = [f for f in instance_figures(s.last_result) if f.operator == "WindowAggregate"]
    busy = sorted((f.busy_s for f in window), reverse=True)
    assert busy[0] > 3 * busy[1]
    assert max(window, key=lambda f: f.busy_s).rows_in == rows[hot]


def test_cli_prints_explain_analyze(tmp_path: Path):
    path = tmp_path / "job.sql"
    path.write_text(SEQ + "EXPLAIN ANALYZE " + WINDOWED + ";\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamsql.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "== Physical Plan, Analyzed ==" in proc.stdout
    assert figures_under(proc.stdout, "WindowAggregate")["#0"]["rows in"] == "20"
