"""The parser: SQL text to statement dataclasses (``ast.py``).

The statement layer is a lark grammar (``grammar/streamsql.lark``); query bodies and
expressions are parsed by sqlglot in the Flink dialect, with positions in the whole script.
"""

from __future__ import annotations

from streamsql.parser.script import parse_script, parse_statement

__all__ = ["parse_script", "parse_statement"]
