"""``streamsql`` with statements piped in: they run one after the other, an error is shown
and counted, and the exit status says whether any failed.
"""

from __future__ import annotations

import subprocess
import sys

NUMS = (
    "CREATE TABLE nums (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '3', "
    "'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '3');\n"
)


def shell(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamsql.cli"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_piped_statements_run_in_order() -> None:
    proc = shell(NUMS + "SELECT id * 2 AS twice\nFROM nums;\n.tables\n")
    assert proc.returncode == 0, proc.stderr
    assert "table nums created" in proc.stdout
    assert "twice" in proc.stdout and "6" in proc.stdout and "3 rows in" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_an_error_is_shown_the_rest_runs_and_the_status_is_1() -> None:
    proc = shell(NUMS + "SELECT nope FROM nums;\nSELECT COUNT(*) AS n FROM nums;\n")
    assert proc.returncode == 1
    assert "unknown column" in proc.stdout or "nope" in proc.stdout
    assert "^^^^" in proc.stdout  # the caret under the bad name
    assert "1 row in" in proc.stdout  # the statement after the error ran


def test_quit_stops_reading() -> None:
    proc = shell(NUMS + ".quit\nSELECT id FROM nums;\n")
    assert proc.returncode == 0
    assert "rows in" not in proc.stdout


def test_a_last_statement_without_semicolon_still_runs() -> None:
    proc = shell(NUMS + "SELECT id FROM nums")
    assert proc.returncode == 0 and "3 rows in" in proc.stdout
