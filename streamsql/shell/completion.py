"""Completion in the shell: SQL keywords and functions, the session's tables, views and
their columns, connector names and connector options inside ``WITH (...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from streamsql.catalog import Catalog
from streamsql.connectors import REGISTRY
from streamsql.shell.commands import COMMANDS

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "HAVING", "ORDER BY", "LIMIT", "AS", "AND", "OR",
    "NOT", "IN", "IS", "NULL", "LIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END",
    "DISTINCT", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL OUTER JOIN", "INNER JOIN", "ON",
    "UNION ALL", "WITH", "OVER", "PARTITION BY", "ROW_NUMBER()", "INSERT INTO", "VALUES",
    "CREATE TABLE", "CREATE VIEW", "CREATE MATERIALIZED VIEW", "DROP TABLE", "DROP VIEW",
    "SHOW TABLES", "SHOW VIEWS", "DESCRIBE", "EXPLAIN", "SET", "RESET", "WATERMARK FOR",
    "PRIMARY KEY", "NOT ENFORCED", "INTERVAL", "SECOND", "MINUTE", "HOUR", "DAY",
    "TABLE", "DESCRIPTOR", "TUMBLE", "HOP", "SESSION", "CUMULATE", "FOR SYSTEM_TIME AS OF",
    "PROCTIME()", "CURRENT_WATERMARK", "COUNT", "SUM", "MIN", "MAX", "AVG", "CAST",
    "COALESCE", "DATE_FORMAT", "TO_TIMESTAMP", "BIGINT", "INT", "DOUBLE", "STRING",
    "VARCHAR", "BOOLEAN", "DECIMAL", "TIMESTAMP(3)", "TIMESTAMP_LTZ(3)", "DATE",
    "BEGIN STATEMENT SET", "EXECUTE STATEMENT SET",
)  # fmt: skip

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")
_CONNECTOR = re.compile(r"'connector'\s*=\s*'([^']*)'", re.IGNORECASE)


class SqlCompleter(Completer):
    """Completes the word before the cursor from what the session knows now."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        if before.lstrip().startswith((".", "\\")) and " " not in before.strip():
            yield from _matching(before.strip(), (c.name for c in COMMANDS), before.strip())
            return
        quoted = _open_quote(before)
        if quoted is not None:
            yield from self._in_quotes(document.text, before, quoted)
            return
        match = _WORD.search(before)
        word = match.group(0) if match else ""
        if not word:
            return
        names = self._names(document.text)
        yield from _matching(word, names, word, meta="name")
        yield from _matching(word, KEYWORDS, word, upper=word.isupper() or not word.islower())

    def _names(self, text: str) -> list[str]:
        """Tables and views, then the columns of those the statement names (of all tables
        when it names none yet).
        """
        tables = self.catalog.names()
        mentioned = [t for t in tables if re.search(rf"\b{re.escape(t)}\b", text, re.I)]
        columns: list[str] = []
        for name in mentioned or tables:
            found = self.catalog.tables.get(name)
            if found is not None:
                columns += [c for c in found.schema.names if c not in columns]
        return [*tables, *columns]

    def _in_quotes(self, text: str, before: str, quoted: str) -> Iterator[Completion]:
        """Inside a string: a connector's name after ``'connector' =``, else an option of
        the statement's connector (of any connector when it names none yet).
        """
        if re.search(r"'connector'\s*=\s*'[^']*$", before, re.IGNORECASE):
            yield from _matching(quoted, sorted(REGISTRY.connectors), quoted, meta="connector")
            return
        if "with" not in before.lower():
            return
        named = _CONNECTOR.search(text)
        connectors = REGISTRY.connectors
        chosen = [connectors[named.group(1)]] if named and named.group(1) in connectors else []
        options: list[str] = ["connector"]
        for connector in chosen or connectors.values():
            for option in (*connector.source_options, *connector.sink_options):
                if "#" not in option.name and option.name not in options:
                    options.append(option.name)
        yield from _matching(quoted, options, quoted, meta="option")


def _open_quote(before: str) -> str | None:
    """The text typed after an unclosed single quote, or None outside quotes."""
    inside, start = False, 0
    for i, c in enumerate(before):
        if c == "'":
            inside, start = not inside, i + 1
    return before[start:] if inside else None


def _matching(
    typed: str, candidates: Iterable[str], replace: str, meta: str = "", upper: bool = True
) -> Iterator[Completion]:
    low = typed.lower()
    for candidate in candidates:
        if candidate.lower().startswith(low) and candidate.lower() != low:
            text = candidate if upper or meta else candidate.lower()
            yield Completion(text, start_position=-len(replace), display_meta=meta)
