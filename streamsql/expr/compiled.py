"""The public face of the expression compiler: :func:`compile_expr` and :class:`Compiled`."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from streamsql.errors import BindError, ExecError, StreamSQLError
from streamsql.expr import registry
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import EvalContext, Node, as_array
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.types import sql_type_name

_DEFAULT_CTX = EvalContext()
_ARROW_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError, ArithmeticError)


class Compiled:
    """A compiled expression: evaluate it on batches of the schema it was compiled for.

    >>> import sqlglot
    >>> from streamsql.parser.dialect import Flink
    >>> e = sqlglot.parse_one("SELECT a + 1 FROM t", read=Flink).expressions[0]
    >>> c = compile_expr(e, pa.schema([("a", pa.int32())]))
    >>> c.evaluate(pa.record_batch({"a": pa.array([1, None], pa.int32())})).to_pylist()
    [2, None]
    """

    __slots__ = ("_node", "columns", "deterministic", "expr", "type")

    def __init__(self, node: Node) -> None:
        self._node = node
        self.expr: exp.Expression = node.expr
        self.type: pa.DataType = node.type
        self.columns: frozenset[str] = node.columns
        self.deterministic: bool = node.deterministic

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError("Compiled is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"Compiled({to_sql(self.expr)!r}, type={sql_type_name(self.type)})"

    @property
    def constant(self) -> pa.Scalar | None:
        """The value of the expression when it does not depend on its input, else None."""
        return self._node.const

    def evaluate(
        self, batch: pa.RecordBatch | pa.Table, ctx: EvalContext | None = None
    ) -> pa.Array | pa.ChunkedArray:
        """The value for every row: an Array for a batch, a ChunkedArray for a table."""
        ctx = ctx or _DEFAULT_CTX
        if isinstance(batch, pa.Table):
            chunks = [self._evaluate(b, ctx) for b in batch.to_batches()]
            return pa.chunked_array(chunks, type=self.type)
        return self._evaluate(batch, ctx)

    def _evaluate(self, batch: pa.RecordBatch, ctx: EvalContext) -> pa.Array:
        try:
            out = as_array(self._node.fn(batch, ctx), batch.num_rows)
            if out.type != self.type:
                out = out.cast(self.type)
        except StreamSQLError:
            raise
        except _ARROW_ERRORS as err:
            raise ExecError(
                f"cannot evaluate {to_sql(self.expr)}: {err}", span=span_of(self.expr)
            ) from err
        return out


def compile_expr(expr: exp.Expression, schema: pa.Schema) -> Compiled:
    """Compile a scalar expression over rows of ``schema``; BindError when it does not bind."""
    try:
        return Compiled(Compiler(schema).compile(expr))
    except StreamSQLError:
        raise
    except _ARROW_ERRORS as err:  # a kernel that refused its input types
        raise BindError(f"cannot compile {to_sql(expr)}: {err}", span=span_of(expr)) from err


def compile_predicate(expr: exp.Expression, schema: pa.Schema) -> Compiled:
    """Compile a filter condition: like :func:`compile_expr`, but it must be BOOLEAN."""
    compiled = compile_expr(expr, schema)
    if not (pa.types.is_boolean(compiled.type) or pa.types.is_null(compiled.type)):
        raise BindError(
            f"WHERE condition must be BOOLEAN, got {sql_type_name(compiled.type)}",
            span=span_of(expr),
        )
    if pa.types.is_null(compiled.type):
        return Compiled(Compiler(schema).constant(expr, pa.scalar(None, pa.bool_())))
    return compiled


def function_names() -> list[str]:
    """Every SQL function name the compiler knows, sorted."""
    return sorted(registry.NAMES)
