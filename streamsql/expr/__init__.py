"""Vectorized expression evaluation: sqlglot trees compiled to closures of pyarrow.compute calls.

``compile_expr(tree, schema)`` binds columns and functions and infers the result type once;
``Compiled.evaluate(batch, ctx)`` then computes the whole column with Arrow kernels. The area
modules imported below register the handlers for each kind of expression.
"""

from __future__ import annotations

from streamsql.expr import (  # noqa: F401  (imported to register their handlers)
    arith,
    casts,
    compare,
    literals,
    logic,
    mathfuncs,
    nested,
    patterns,
    refs,
    strings,
    temporal,
    timefuncs,
)
from streamsql.expr.compiled import Compiled, compile_expr, compile_predicate, function_names
from streamsql.expr.intervals import interval_ms
from streamsql.expr.literals import literal_expr
from streamsql.expr.node import EvalContext

__all__ = [
    "Compiled",
    "EvalContext",
    "compile_expr",
    "compile_predicate",
    "function_names",
    "interval_ms",
    "literal_expr",
]
