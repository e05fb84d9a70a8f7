"""The tree walk: sqlglot expression -> :class:`Node`, with column references and folding.

Each handler (registered by the area modules) compiles its children with :meth:`Compiler.compile`
and builds its own closure with :meth:`Compiler.make`, which derives the node's type by running
the closure on an empty batch of the input schema, merges the children's traits, and folds the
node to a constant when all its inputs are constants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.types as pt
from sqlglot import exp

from streamsql.errors import BindError, ExecError, Span, did_you_mean
from streamsql.expr import registry
from streamsql.expr.node import EvalContext, Fn, Node, constant, is_scalar
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.types import sql_type_name

#: Context used when probing types and folding constants: a fixed clock, no watermark.
PROBE_CTX = EvalContext(watermark_ms=None, now_ms=lambda: 0)

#: Functions that aggregate rows: the binder plans them, they never reach an expression.
AGGREGATES = frozenset(
    {
        *("COUNT", "SUM", "MIN", "MAX", "AVG", "COLLECT", "LISTAGG", "ARRAY_AGG"),
        *("STDDEV", "STDDEV_POP", "STDDEV_SAMP", "VAR_POP", "VAR_SAMP", "VARIANCE"),
        *("FIRST_VALUE", "LAST_VALUE", "JSON_ARRAYAGG", "JSON_OBJECTAGG"),
        *("ROW_NUMBER", "RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST", "NTILE", "LAG", "LEAD"),
    }
)

#: Names a bare identifier may carry to mean a niladic function (when no column has them).
NILADIC = frozenset(
    {
        *("CURRENT_TIMESTAMP", "LOCALTIMESTAMP", "CURRENT_DATE", "CURRENT_TIME", "LOCALTIME"),
        "CURRENT_ROW_TIMESTAMP",
    }
)


def name_span(e: exp.Expression) -> Span | None:
    """The span of a function's name (sqlglot keeps it on the call node), else of ``e``."""
    meta = getattr(e, "_meta", None) or {}
    if "line" in meta and "start" in meta and "end" in meta:
        width = meta["end"] - meta["start"]
        return Span(meta["line"], max(1, meta["col"] - width), meta["start"], meta["end"] + 1)
    return span_of(e)


def func_name(e: exp.Expression) -> str:
    """The SQL name of a function call node."""
    if isinstance(e, exp.Anonymous):
        return str(e.this).upper()
    if isinstance(e, exp.Func):
        return e.sql_name()
    return type(e).__name__.upper()


class Compiler:
    """Compiles expressions over one input schema."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.empty = pa.RecordBatch.from_arrays(
            [pa.array([], type=f.type) for f in schema], schema=schema
        )
        self.one = pa.record_batch([pa.nulls(1)], names=["_"])

    # -- errors ---------------------------------------------------------------------------

    def error(self, message: str, e: exp.Expression, hint: str | None = None) -> BindError:
        """A BindError pointing at ``e`` (at a function's name when it is a call)."""
        span = name_span(e) if isinstance(e, exp.Func) else span_of(e)
        if span is None and e.parent is not None:
            span = span_of(e.parent)
        return BindError(message, span=span, hint=hint)

    def type_error(self, e: exp.Expression, what: str, types: Iterable[pa.DataType]) -> BindError:
        """BindError "cannot apply X to INT, STRING"."""
        names = ", ".join(sql_type_name(t) for t in types)
        return self.error(f"cannot apply {what} to {names}", e)

    def expect(self, node: Node, check, what: str, wanted: str) -> Node:
        """``node`` if ``check(node.type)`` or it is NULL, else BindError "X expects ..."."""
        if pt.is_null(node.type) or check(node.type):
            return node
        raise self.error(f"{what} expects {wanted}, got {sql_type_name(node.type)}", node.expr)

    # -- the walk ----------------------------------------------------------------------

    def compile(self, e: exp.Expression | None) -> Node:
        """Compile one expression node (recursively)."""
        if e is None:
            raise BindError("a function argument is missing")
        name = func_name(e) if isinstance(e, exp.Func) else ""
        if isinstance(e, exp.AggFunc) or name in AGGREGATES:
            raise self.error(f"aggregate function {name} is not allowed here", e)
        if isinstance(e, exp.Window):
            raise self.error("window function calls (OVER) are not allowed here", e)
        if isinstance(e, (exp.Subquery, exp.Select, exp.Exists)):
            raise self.error("subqueries are not supported in expressions", e)
        handler = registry.lookup(e)
        if handler is not None:
            return handler(self, e)
        if isinstance(e, exp.Func):
            raise self.error(
                f"unknown function {name}",
                e,
                hint=did_you_mean(name, sorted(registry.NAMES), "function"),
            )
        raise self.error(f"unsupported expression {to_sql(e)!r}", e)

    def make(
        self,
        e: exp.Expression,
        fn: Fn,
        children: Iterable[Node] = (),
        *,
        deterministic: bool = True,
        contextual: bool = False,
        can_fail: bool = False,
        fold: bool = True,
    ) -> Node:
        """A node for ``e`` evaluated by ``fn``; its type comes from a probe on empty input."""
        kids = list(children)
        columns = frozenset().union(*(k.columns for k in kids))
        node = Node(
            fn,
            pa.null(),
            e,
            columns,
            deterministic and all(k.deterministic for k in kids),
            contextual or any(k.contextual for k in kids),
            can_fail or any(k.can_fail for k in kids),
        )
        node = dataclasses.replace(node, type=self._run(node, self.empty).type)
        if fold and node.deterministic and not node.contextual and all(k.is_const for k in kids):
            return self.constant(e, self._scalar(self._run(node, self.one)))
        return node

    def constant(self, e: exp.Expression, value: pa.Scalar) -> Node:
        """A constant node."""
        return Node(constant(value), value.type, e, const=value)

    def _run(self, node: Node, batch: pa.RecordBatch):
        try:
            return node.fn(batch, PROBE_CTX)
        except BindError:
            raise
        except ExecError as err:
            raise BindError(err.message, span=span_of(node.expr), hint=err.hint) from err
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as err:
            raise BindError(
                f"cannot evaluate {to_sql(node.expr)}: {err}", span=span_of(node.expr)
            ) from err

    @staticmethod
    def _scalar(v) -> pa.Scalar:
        return v if is_scalar(v) else v[0]
