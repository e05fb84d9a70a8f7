"""When Enter runs the input: a ';' outside quotes and comments ends a statement."""

from __future__ import annotations

import pytest

from streamsql.shell.text import is_complete, split_statements


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1;",
        "SELECT 1;  -- a comment after",
        "SELECT 'a;b';",
        "SELECT 'it''s';",
        "SELECT 1\nFROM t\nWHERE x = 2;",
        "SELECT 1; SELECT 2;",
        ".tables",
        "\\d bids",
        "",
        "   ",
        "-- only a comment",
    ],
)
def test_whole_inputs_run(text: str) -> None:
    assert is_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1",
        "SELECT ';'",  # the ';' is in a string
        "SELECT 1 -- ;",  # ... in a comment
        "SELECT 1 /* ; */",
        "SELECT 'open;",
        "SELECT 1; SELECT 2",
        "CREATE TABLE t (x INT)\nWITH ('connector' = 'datagen'",
    ],
)
def test_unfinished_inputs_go_on_to_a_new_line(text: str) -> None:
    assert not is_complete(text)


def test_statements_are_split_at_semicolons_outside_quotes_and_comments() -> None:
    text = "SELECT 'a;b' FROM t; -- x;\n/* y; */ SELECT 2;\n"
    assert split_statements(text) == ["SELECT 'a;b' FROM t", "-- x;\n/* y; */ SELECT 2"]
