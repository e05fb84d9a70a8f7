"""``streamsql run`` ends with a table of figures per operator (plain text when piped)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import SCRIPT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamsql.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.sql"
    path.write_text(SCRIPT)
    return path


def table(text: str, first: str) -> list[list[str]]:
    """The plain table whose heading line starts with ``first``, split into cells."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(first))
    rows = [re.split(r"\s{2,}", lines[at].strip())]
    for line in lines[at + 1 :]:
        if not re.match(r"\d+ ", line):  # each row starts with its task
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_run_prints_figures_per_operator(script):
    proc = run("run", str(script))
    assert proc.returncode == 0, proc.stderr
    heading, *rows = table(proc.stderr, "task")
    assert heading[:5] == ["task", "operator", "p", "rows in", "rows out"]
    for name in ("util", "backpr", "headroom", "watermark", "lag ms", "state", "peak"):
        assert name in heading
    by_op = {r[1]: dict(zip(heading, r, strict=True)) for r in rows}
    assert by_op["Scan"]["rows in"] == "20"
    assert (by_op["WindowAggregate"]["rows in"], by_op["WindowAggregate"]["rows out"]) == (
        "20",
        "3",
    )
    assert by_op["Sink"]["rows in"] == "3"
    assert int(by_op["WindowAggregate"]["peak"]) > 0
    assert "┃" not in proc.stderr  # plain text when not on a terminal
    assert proc.stdout.count("+I[") == 3  # rows stay alone on stdout


def test_stats_adds_figures_per_instance(script):
    proc = run("run", str(script), "--stats", "--set", "execution.runtime=deterministic")
    assert proc.returncode == 0, proc.stderr
    heading, *rows = table(proc.stderr, "task  operator         #")
    assert heading[2] == "#" and {r[2] for r in rows} == {"#0"}
    assert "watermark +inf" in proc.stderr


def test_quiet_prints_no_figures(script):
    proc = run("run", str(script), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
