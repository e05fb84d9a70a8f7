"""Every fixture script parses to the AST recorded in its golden file.

Regenerate the goldens after a deliberate change with::

    STREAMSQL_UPDATE_GOLDENS=1 python -m pytest tests/parser

and read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from parser_dump import dump_statements

from streamsql.parser import parse_script

FIXTURES = Path(__file__).parent / "fixtures"
UPDATE = os.environ.get("STREAMSQL_UPDATE_GOLDENS") == "1"


@pytest.mark.parametrize("script", sorted(FIXTURES.glob("*.sql")), ids=lambda p: p.stem)
def test_fixture_matches_golden(script: Path) -> None:
    actual = dump_statements(parse_script(script.read_text(encoding="utf-8")))
    golden = script.with_suffix(".golden")
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"no golden for {script.name}: run with STREAMSQL_UPDATE_GOLDENS=1"
    assert actual == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("script", sorted(FIXTURES.glob("*.sql")), ids=lambda p: p.stem)
def test_statement_text_and_span_agree(script: Path) -> None:
    """A statement's ``text`` is the script text at its span, and re-parses alone."""
    text = script.read_text(encoding="utf-8")
    for statement in parse_script(text):
        assert statement.span is not None
        assert text[statement.span.start : statement.span.end] == statement.text
        assert type(parse_script(statement.text)[0]) is type(statement)
