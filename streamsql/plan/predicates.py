"""Small tools on bound predicates: split a condition into its conjuncts, join conjuncts
back into one condition, and list the plan columns an expression reads.
"""

from __future__ import annotations

import functools

from sqlglot import exp


def conjuncts(e: exp.Expression | None) -> list[exp.Expression]:
    """The AND-ed parts of ``e`` (none for None)."""
    if e is None:
        return []
    if isinstance(e, exp.And):
        return conjuncts(e.this) + conjuncts(e.expression)
    if isinstance(e, exp.Paren):
        return conjuncts(e.this)
    return [e]


def conjoin(parts: list[exp.Expression]) -> exp.Expression | None:
    """``parts`` AND-ed together (OR parts parenthesized); None when there are none."""
    if not parts:
        return None
    return functools.reduce(lambda a, b: exp.And(this=_paren(a), expression=_paren(b)), parts)


def _paren(e: exp.Expression) -> exp.Expression:
    return exp.Paren(this=e) if isinstance(e, exp.Or) else e


def column_refs(e: exp.Expression) -> set[str]:
    """The names of the columns ``e`` reads."""
    return {c.name for c in e.find_all(exp.Column)}
