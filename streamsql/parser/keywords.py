"""Keyword lists that error messages compare a user's words against."""

from __future__ import annotations

#: Words that start a statement; a misspelt one gets a "did you mean" hint.
STATEMENT_KEYWORDS = (
    "CREATE",
    "DROP",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "SET",
    "RESET",
    "INSERT",
    "EXECUTE",
    "BEGIN",
    "EXPLAIN",
    "SELECT",
    "WITH",
    "VALUES",
)

#: Words that can only start a new statement, so they reveal a missing ';' before them.
NEW_STATEMENT_KEYWORDS = frozenset(STATEMENT_KEYWORDS) - {"WITH", "VALUES", "SET"}

#: Words inside a query that a typo most often aims at.
CLAUSE_KEYWORDS = (
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "DISTINCT",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "BETWEEN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "OVER",
    "PARTITION",
    "WINDOW",
    "INTERVAL",
    "TABLE",
    "DESCRIPTOR",
    "LATERAL",
    "UNNEST",
    "VALUES",
)

#: What EXPLAIN accepts before the statement it explains.
EXPLAIN_DETAILS = (
    "ANALYZE",
    "VERBOSE",
    "CHANGELOG_MODE",
    "ESTIMATED_COST",
    "JSON_EXECUTION_PLAN",
    "PLAN_ADVICE",
)
