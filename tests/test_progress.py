"""``streamsql run``'s progress display: the status figures, plain lines with
``--progress`` when piped, a transient live status on a terminal, nothing otherwise.

The runs take a couple of seconds each (a rate-limited datagen source) and mostly sleep:
they all start at once, and each test reads the output of its own.
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

import streamsql
from streamsql.progress import (
    Sample,
    job_watermark,
    live_view,
    plain_line,
    recent_rate,
    total_rows,
    watermark_text,
)
from streamsql.runtime.job import JobResult
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators import ResultBuffer
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK

#: A slow source (a rate-limited one reads a batch per row or few: few rows, little work).
RATE = 200
ROWS = 440  # 2.2 s at RATE: two plain lines, at 1 s and 2 s

TABLES = f"""
CREATE TABLE t (
    id BIGINT,
    ts AS TO_TIMESTAMP_LTZ(1704067200000 + id * 100, 3),
    WATERMARK FOR ts AS ts
) WITH ('connector' = 'datagen', 'number-of-rows' = '{ROWS}', 'rows-per-second' = '{RATE}',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{ROWS}');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
"""
INSERT = """
INSERT INTO out
SELECT window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end;
"""
SELECT = "SELECT COUNT(*) AS n FROM t;"

#: Each run: the script, its arguments, and whether stderr is a terminal.
RUNS = {
    "progress": (INSERT, ["--progress"], False),
    "piped": (INSERT, [], False),
    "select": (SELECT, ["--progress"], False),
    "terminal": (INSERT, [], True),
    "quiet": (INSERT, ["-q"], True),
}
LINE = re.compile(
    r"progress: (?P<s>[\d.]+) s, (?P<read>[\d,]+) of (?P<total>[\d,]+) rows read "
    r"\((?P<pct>\d+)%, (?P<rate>[\d,]+)/s\), (?P<written>[\d,]+) written, "
    r"watermark (?P<wm>-|[\d-]+ [\d:.]+), (?P<late>[\d,]+) late"
)

STYLE = re.compile(r"\x1b\[[\d;]*m")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**env, "TERM": "xterm", "COLUMNS": "120", "NO_COLOR": "1"}


def _start(script: Path, args: list[str], terminal: bool) -> tuple[subprocess.Popen, int | None]:
    """Start ``streamsql run``; with ``terminal`` its stderr is a pseudo-terminal."""
    master, slave = pty.openpty() if terminal else (None, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamsql.cli", "run", str(script), *args],
        stdout=subprocess.PIPE,
        stderr=slave if terminal else subprocess.PIPE,
        env=_env(),
    )
    if slave is not None:
        os.close(slave)
    return proc, master


def _read_terminal(master: int, into: list[bytes]) -> None:
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the process closed its end
            return
        if not data:
            return
        into.append(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str]]]:
    """Each run's stdout and stderr (raw, control codes and all, on a terminal)."""
    folder = tmp_path_factory.mktemp("progress")
    started = {}
    for name, (body, args, terminal) in RUNS.items():
        script = folder / f"{name}.sql"
        script.write_text(TABLES + body)
        started[name] = _start(script, args, terminal)
    readers = {}
    for name, (_, master) in started.items():
        if master is not None:
            chunks: list[bytes] = []
            reader = threading.Thread(target=_read_terminal, args=(master, chunks))
            reader.start()
            readers[name] = (reader, chunks)
    outputs = {}
    for name, (proc, master) in started.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        if name in readers:
            reader, chunks = readers[name]
            reader.join(timeout=10)
            os.close(master)  # type: ignore[arg-type]
            err = b"".join(chunks)
        outputs[name] = (out.decode(), err.decode(errors="replace"))
    yield outputs


# -- the figures ---------------------------------------------------------------------------


def test_plain_line_shows_the_figures():
    s = Sample(12.34, 1_234_567, 1_200, 3, 1_704_067_205_000)
    assert plain_line(s, 98_765.4) == (
        "progress: 12.3 s, 1,234,567 rows read (98,765/s), 1,200 written, "
        "watermark 2024-01-01 00:00:05.000, 3 late"
    )


def test_plain_line_before_any_watermark_with_a_total_and_checkpoints():
    s = Sample(75.0, 500, 0, 0, None, checkpoints=1, total_rows=2_000)
    assert plain_line(s, 10.0) == (
        "progress: 1:15, 500 of 2,000 rows read (25%, 10/s), 0 written, watermark -, 0 late, "
        "1 checkpoint"
    )


def test_watermark_text():
    assert watermark_text(None) == "-"
    assert watermark_text(MIN_WATERMARK) == "-"
    assert watermark_text(MAX_WATERMARK) == "+inf"
    assert watermark_text(1_704_067_205_120) == "2024-01-01 00:00:05.120"


def test_recent_rate_is_over_the_samples_not_the_whole_run():
    history = [Sample(8.0, 1_000, 0, 0, None), Sample(10.0, 5_000, 0, 0, None)]
    assert recent_rate(history) == 2_000.0
    assert recent_rate(history[1:]) == 500.0  # one sample: its whole-run average
    assert recent_rate([Sample(0.0, 0, 0, 0, None)]) == 0.0


def _metrics(name: str, watermark: int | None, written: int = 0) -> OperatorMetrics:
    m = OperatorMetrics(1, 0, name, watermark=watermark)
    if written:
        m.add("rows_written", written)
    return m


def test_job_watermark_is_the_lowest_sink_watermark():
    result = JobResult(
        "job",
        1.0,
        [
            _metrics("Scan", 9_000),
            _metrics("Sink", 5_000, written=7),
            _metrics("Sink", 7_000, written=3),
            _metrics("Sink", MIN_WATERMARK),  # no event time: left out
        ],
        {"t": {"rows_read": 40}},
    )
    assert job_watermark(result) == 5_000
    assert result.rows_written == 10
    fresh = JobResult("job", 0.1, [_metrics("Scan", 1), _metrics("Sink", None)], {})
    assert job_watermark(fresh) is None


def test_live_view_fits_two_lines():
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(live_view(Sample(3.0, 30_000, 300, 0, 1_704_067_205_000, 2, 60_000), 9_999.6))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2, lines
    assert "running 3.0 s" in lines[0] and "50%" in lines[0]
    assert lines[1].startswith("30,000 rows read · 10,000 rows/s · 300 written · watermark ")
    assert "2024-01-01 00:00:05.000" in lines[1]


def test_total_rows_of_bounded_sources(tmp_path: Path):
    data = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": list(range(250))}), data, row_group_size=100)
    session = streamsql.connect()
    session.execute(
        f"""
        CREATE TABLE p (x BIGINT) WITH ('connector' = 'filesystem', 'path' = '{data}',
                                        'format' = 'parquet');
        CREATE TABLE g (x BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '40');
        CREATE TABLE u (x BIGINT) WITH ('connector' = 'datagen');
        CREATE TABLE o (x BIGINT) WITH ('connector' = 'blackhole');
        """
    )

    def total(query: str) -> int | None:
        handle = session.sql(query)
        return total_rows(session.driver(handle.planned, ResultBuffer(handle.schema)).job)

    assert total("SELECT x FROM p UNION ALL SELECT x FROM g") == 290
    assert total("SELECT x FROM p UNION ALL SELECT x FROM u") is None  # unbounded


# -- streamsql run ------------------------------------------------------------------------


def test_progress_prints_plain_lines_then_the_summary(runs):
    err = runs["progress"][1]
    lines = err.splitlines()
    shown = [LINE.fullmatch(line) for line in lines if line.startswith("progress:")]
    assert len(shown) >= 1 and all(shown), lines
    last = max(i for i, line in enumerate(lines) if line.startswith("progress:"))
    assert lines[last + 1].startswith(f"job finished: {ROWS:,} rows read")
    previous = 0
    for m in shown:
        read = int(m["read"].replace(",", ""))
        assert previous < read < ROWS and int(m["total"].replace(",", "")) == ROWS
        previous = read
        seconds = float(m["s"])
        # The source's pace (which a busy machine may slow down, but never speed up).
        assert 0.25 * RATE < read / seconds < 1.5 * RATE
        assert 0.25 * RATE < int(m["rate"].replace(",", "")) < 1.5 * RATE
        assert int(m["pct"]) == read * 100 // ROWS or int(m["pct"]) == round(read * 100 / ROWS)
        assert int(m["written"].replace(",", "")) > 0
        assert m["wm"].startswith("2024-01-01 00:00:")  # ids * 100 ms past midnight
        assert m["late"] == "0"
    assert "\x1b" not in err  # plain text: no control codes


def test_piped_output_is_as_before(runs):
    err = runs["piped"][1]
    assert "progress" not in err
    assert err.startswith(f"job finished: {ROWS:,} rows read")
    assert "\x1b" not in err


def test_select_shows_no_progress(runs):
    out, err = runs["select"]
    assert "progress" not in err
    assert str(ROWS) in out


def test_terminal_shows_a_live_status_that_goes_away(runs):
    err = runs["terminal"][1]
    text = STYLE.sub("", err)  # bold and dim
    assert "rows read · " in text and "running " in text
    before, _, after = text.partition("job finished:")
    assert after and "rows read · " not in after  # gone once the job ended
    assert before.rstrip("\r\n").endswith("\x1b[2K")  # the status lines erased
    assert "\x1b[?25l" in before and "\x1b[?25h" in before  # and the cursor shown again


def test_quiet_shows_nothing_on_a_terminal(runs):
    err = runs["quiet"][1]
    assert err == ""
