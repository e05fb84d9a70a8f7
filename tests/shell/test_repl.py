"""The shell as a user meets it: driven through a pseudo-terminal, keystroke by keystroke."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

PROMPT = "streamsql>"
BIDS = (
    "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), "
    "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', "
    "'rows-per-second' = '400', 'fields.auction.min' = '1', 'fields.auction.max' = '3');"
)
BOUNDED = (
    "CREATE TABLE nums (id BIGINT, v INT) WITH ('connector' = 'datagen', "
    "'number-of-rows' = '5', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1', "
    "'fields.id.end' = '5');"
)
WINDOWED = (
    "SELECT window_start, auction, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE bids, "
    "DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, auction;"
)


def spawn(history: Path) -> pexpect.spawn:
    env = {
        **os.environ,
        "STREAMSQL_HISTORY": str(history),
        "PROMPT_TOOLKIT_NO_CPR": "1",  # the pty does not answer cursor position requests
        "TERM": "xterm",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "streamsql.cli"],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 140),
    )
    child.expect(PROMPT)
    return child


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pexpect.spawn]:
    """One shell for the tests of this module, in order (each leaves it at the prompt),
    with ``nums`` (5 rows) and ``bids`` (unbounded, 400 rows/s) created.
    """
    child = spawn(tmp_path_factory.mktemp("shell") / "history")
    run(child, BOUNDED, "table nums created")
    run(child, BIDS, "table bids created")
    yield child
    child.close(force=True)


def run(child: pexpect.spawn, sql: str, *expected: str) -> None:
    child.sendline(sql)
    for text in expected:
        child.expect_exact(text)
    child.expect(PROMPT)


def test_a_bounded_query_prints_a_table_with_its_row_count_and_time(shell) -> None:
    shell.sendline("SELECT id, id * 10 AS tenfold FROM nums WHERE id > 2;")
    shell.expect_exact("tenfold")
    shell.expect_exact("BIGINT")
    shell.expect_exact("50")
    shell.expect(r"3 rows in \d+\.\d\d s")
    shell.expect(PROMPT)


def test_a_continuous_query_updates_live_until_ctrl_c(shell) -> None:
    shell.sendline(WINDOWED)
    shell.expect(r"[1-9]\d* rows?, [1-9][\d,]* change\(s\)", timeout=20)  # a window closed
    shell.expect_exact("Ctrl-C stops the query")
    shell.sendintr()
    shell.expect(r"stopped after \d+\.\d\d s")
    shell.expect(PROMPT)
    run(shell, "SHOW TABLES;", "bids", "nums", "2 rows")  # the session goes on


def test_changelog_mode_prints_the_changes(shell) -> None:
    run(shell, "SET 'sql-client.execution.result-mode' = 'changelog';", "mode changelog")
    shell.sendline("SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction;")
    shell.expect(r"\+I\[[123], 1\]")
    shell.expect(r"-U\[[123], \d+\]")  # counts go up: retract, then the new count
    shell.expect(r"\+U\[[123], \d+\]")
    shell.sendintr()
    shell.expect("stopped after")
    shell.expect(PROMPT)
    run(shell, ".mode table", "mode table")


def test_limit_ends_a_continuous_query_by_itself(shell) -> None:
    shell.sendline("SELECT auction, price FROM bids LIMIT 4;")
    shell.expect_exact("4 rows")
    shell.expect(r"4 change\(s\) in \d+\.\d\d s; the query ended")
    shell.expect(PROMPT)


def test_an_error_points_at_the_sql_and_the_session_goes_on(shell) -> None:
    run(shell, "SELECT id FROM numz;", "unknown table or view 'numz'", "^^^^", "did you mean")
    run(shell, "SELEC id FROM nums;", "syntax error", "did you mean SELECT?")
    run(shell, ".bogus", "unknown command '.bogus'")
    run(shell, "SELECT COUNT(*) AS n FROM nums;", "1 row in")


def test_statements_span_lines_until_the_semicolon(shell) -> None:
    shell.sendline("SELECT id")
    shell.expect_exact("->")  # a continuation line, not a run
    shell.sendline("FROM nums")
    shell.expect_exact("->")
    shell.sendline("WHERE id = 4;")
    shell.expect("1 row in")
    shell.expect(PROMPT)


def test_tab_completes_tables_and_columns(shell) -> None:
    shell.send("SELECT COUNT(*) AS n FROM num\t")  # Tab: 'nums', the only name so starting
    shell.expect_exact("num")
    shell.send(";\r")
    shell.expect("1 row in")  # without the completion: "unknown table or view 'num'"
    shell.expect(PROMPT)


def test_commands_and_statements_about_the_session(shell) -> None:
    run(shell, ".tables", "bids", "nums", "2 rows")
    run(shell, ".describe nums", "id", "BIGINT", "v", "INT", "2 rows")
    run(shell, "DESCRIBE nums;", "BIGINT", "2 rows")
    run(shell, "SET 'parallelism.default' = '2';", "set 'parallelism.default' = '2'")
    run(shell, "EXPLAIN SELECT id FROM nums;", "Scan")
    run(shell, ".timer on", "timer on")
    run(shell, "SELECT id FROM nums;", "5 rows in", "time:")
    run(shell, ".timer off", "timer off")
    run(shell, ".help", ".describe", ".mode", "Ctrl-D leaves")


def test_ctrl_d_leaves_and_history_is_kept(tmp_path: Path) -> None:
    child = spawn(tmp_path / "history")
    run(child, BOUNDED, "table nums created")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "CREATE TABLE nums" in (tmp_path / "history").read_text()


def test_an_insert_runs_its_job_and_an_unbounded_one_stops_on_ctrl_c(shell) -> None:
    run(shell, "CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');", "created")
    run(shell, "INSERT INTO out SELECT id FROM nums;", "5 rows read, 5 rows written")
    shell.sendline("INSERT INTO out SELECT auction FROM bids;")
    shell.expect("rows read")  # the live status (or nothing yet): give it a moment
    shell.sendintr()
    shell.expect("stopped by interrupt")
    shell.expect(r"[\d,]+ rows read")
    shell.expect(PROMPT)
