"""The table of expression handlers: by sqlglot node class and by SQL function name.

Area modules register their handlers with :func:`handles` (sqlglot classes, e.g. ``exp.Upper``)
and :func:`function` (names that sqlglot leaves as ``exp.Anonymous``, e.g. ``SPLIT_INDEX``).
A handler takes the compiler and the node and returns a compiled :class:`~streamsql.expr.node.Node`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

if TYPE_CHECKING:
    from streamsql.expr.compiler import Compiler
    from streamsql.expr.node import Node

Handler = Callable[["Compiler", exp.Expression], "Node"]

BY_CLASS: dict[type[exp.Expression], Handler] = {}
BY_NAME: dict[str, Handler] = {}
#: SQL names users can call (for "did you mean" hints and completion).
NAMES: set[str] = set()


def handles(*classes: type[exp.Expression], names: tuple[str, ...] = ()) -> Callable:
    """Register a handler for sqlglot node classes; ``names`` are their SQL spellings."""

    def deco(fn: Handler) -> Handler:
        for cls in classes:
            BY_CLASS[cls] = fn
        NAMES.update(names)
        return fn

    return deco


def function(*names: str) -> Callable:
    """Register a handler for ``exp.Anonymous`` calls of the given (upper-case) names."""

    def deco(fn: Handler) -> Handler:
        for name in names:
            BY_NAME[name] = fn
        NAMES.update(names)
        return fn

    return deco


def lookup(e: exp.Expression) -> Handler | None:
    """The handler for ``e``, or None."""
    if isinstance(e, exp.Anonymous):
        return BY_NAME.get(str(e.this).upper())
    for cls in type(e).__mro__:
        if cls in BY_CLASS:
            return BY_CLASS[cls]
        if cls is exp.Expression:
            break
    return None
