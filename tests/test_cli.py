"""``streamsql run`` and ``streamsql explain`` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
CREATE TABLE t (
    id BIGINT,
    ts AS TO_TIMESTAMP_LTZ(id * 1000, 3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '20', 'rows-per-second' = '1000000',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '20');
CREATE TABLE out (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print');
INSERT INTO out
SELECT window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamsql.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.sql"
    path.write_text(SCRIPT)
    return path


def test_run_prints_rows_and_a_summary(script):
    proc = run("run", str(script), "-p", "2")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 3 and all("+I[" in line for line in lines)
    assert "job finished: 20 rows read, 3 rows written, 0 late rows dropped" in proc.stderr


def test_run_select_prints_a_table(tmp_path):
    path = tmp_path / "select.sql"
    path.write_text(SCRIPT.split("CREATE TABLE out")[0] + "SELECT id FROM t WHERE id < 3;")
    proc = run("run", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "2 rows" in proc.stdout and "BIGINT" in proc.stdout


def test_set_option_is_applied_and_checked(script):
    ok = run("run", str(script), "--set", "execution.batch-size=3")
    assert ok.returncode == 0
    bad = run("run", str(script), "--set", "execution.batch-sise=3")
    assert bad.returncode == 1
    assert "unknown setting 'execution.batch-sise'" in bad.stderr
    assert "execution.batch-size" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_errors_show_the_sql_and_exit_non_zero(tmp_path):
    path = tmp_path / "bad.sql"
    path.write_text(SCRIPT.replace("COUNT(*)", "COUNT(*), MAX(idd)"))
    proc = run("run", str(path))
    assert proc.returncode == 1
    assert "unknown column 'idd'" in proc.stderr
    assert "^^^" in proc.stderr and "did you mean 'id'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_data_names_file_and_line(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("1,2020-01-01 00:00:00\nx,2020-01-01 00:00:01\n")
    path = tmp_path / "bad_data.sql"
    path.write_text(
        f"CREATE TABLE c (a BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'filesystem', "
        f"'path' = '{data}', 'format' = 'csv'); SELECT a FROM c;"
    )
    proc = run("run", str(path))
    assert proc.returncode == 1
    assert "data.csv, line 2" in proc.stderr and "Traceback" not in proc.stderr
    skip = path.read_text().replace("'csv')", "'csv', 'format.ignore-parse-errors' = 'true')")
    path.write_text(skip)
    proc = run("run", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "1 malformed rows skipped" in proc.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    proc = run("run", str(tmp_path / "nope.sql"))
    assert proc.returncode != 0 and "cannot read" in proc.stderr


def test_explain_command(script):
    proc = run("explain", str(script), "-p", "2")
    assert proc.returncode == 0, proc.stderr
    assert "== Physical Plan ==" in proc.stdout and "WindowAggregate" in proc.stdout
    assert "parallelism=2" not in proc.stdout  # no keys: one instance, chained to the source


def test_help_lists_the_commands():
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("run", "explain", "shell", "checkpoints", "savepoint"):
        assert command in proc.stdout


def test_no_arguments_opens_the_shell_which_reads_a_pipe_as_a_script():
    proc = subprocess.run(
        [sys.executable, "-m", "streamsql.cli"],
        input="SHOW TABLES;\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "0 rows" in proc.stdout
