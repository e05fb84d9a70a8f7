"""A sqllogictest-style runner for streaming SQL end-to-end files (``*.slt``).

Blocks are separated by blank lines:

    statement ok
    CREATE TABLE ...

    statement error <message fragment>
    SELECT ...

    query [rowsort]
    SELECT ...
    ----
    <expected rows, tab-separated, NULL for nulls>

    explain
    SELECT ...
    ----
    <expected EXPLAIN text>

``${DATA}`` in SQL stands for the bundled ``queries/data`` folder. Expected output is
regenerated, never hand-edited: run with ``STREAMSQL_UPDATE_SLT=1`` and read the diff.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from dataclasses import dataclass
from pathlib import Path

import streamsql
from streamsql.errors import StreamSQLError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "queries" / "data"
UPDATE = os.environ.get("STREAMSQL_UPDATE_SLT") == "1"


@dataclass
class Block:
    kind: str  # statement | query | explain
    arg: str  # ok / error message / rowsort
    sql: str
    expected: list[str]
    line: int
    comments: list[str]


def parse(text: str) -> list[Block]:
    blocks = []
    lines = text.split("\n")
    i = 0
    comments: list[str] = []
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            comments.append(line)
            i += 1
            continue
        if not line.strip():
            i += 1
            continue
        head, start = [*line.split(None, 1), ""], i + 1
        kind, arg = head[0], head[1].strip()
        i += 1
        sql_lines, expected = [], []
        while i < len(lines) and lines[i].strip() and lines[i] != "----":
            sql_lines.append(lines[i])
            i += 1
        if i < len(lines) and lines[i] == "----":
            i += 1
            while i < len(lines) and lines[i].strip():
                expected.append(lines[i])
                i += 1
        if kind not in ("statement", "query", "explain"):
            raise ValueError(f"line {start}: unknown block '{kind}'")
        blocks.append(Block(kind, arg, "\n".join(sql_lines), expected, start, comments))
        comments = []
    return blocks


def render(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def run_file(path: Path, parallelism: int) -> tuple[str, list[str]]:
    """Run an .slt file; returns (regenerated text, list of mismatches)."""
    session = streamsql.connect(settings={"parallelism.default": str(parallelism)})
    blocks = parse(path.read_text())
    failures: list[str] = []
    out: list[str] = []
    for block in blocks:
        sql = block.sql.replace("${DATA}", str(DATA))
        got: list[str] = []
        where = f"{path.name}:{block.line} (parallelism {parallelism})"
        try:
            if block.kind == "statement":
                session.execute(sql)
                if block.arg != "ok":
                    failures.append(f"{where}: expected an error, got none")
            elif block.kind == "query":
                table = session.query(sql)
                got = ["\t".join(render(v) for v in row.values()) for row in table.to_pylist()]
                if block.arg == "rowsort":
                    got.sort()
            else:  # blank lines separate blocks, so the plan's own are dropped
                got = [line for line in session.explain(sql).split("\n") if line.strip()]
        except StreamSQLError as e:
            if block.kind == "statement" and block.arg.startswith("error"):
                message = block.arg[len("error") :].strip()
                if message not in str(e):
                    failures.append(f"{where}: error {str(e)!r} lacks {message!r}")
            else:
                failures.append(f"{where}: {e}")
        if block.kind != "statement" and got != block.expected:
            failures.append(
                f"{where}: output differs\n  expected: {block.expected[:5]}\n  got: {got[:5]}"
            )
        header = f"{block.kind} {block.arg}".rstrip()
        text = "".join(c + "\n" for c in block.comments) + f"{header}\n{block.sql}"
        if block.kind != "statement":
            text += "\n----\n" + "\n".join(got)
        out.append(text)
    return "\n\n".join(out) + "\n", failures
