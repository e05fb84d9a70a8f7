"""Statement dataclasses: what the parser produces and the session executes.

SELECT bodies and expressions stay sqlglot trees (``sqlglot.exp.Expression``); the
positions in their ``meta`` (line, col, start, end) are offsets into the whole script, so
any later stage can point at the SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from streamsql.errors import Span
from streamsql.types import TypeSpec


@dataclass(frozen=True)
class Statement:
    """Base of every statement; ``text`` is the statement's source, ``span`` its start."""

    text: str = field(default="", compare=False, kw_only=True)
    span: Span | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True)
class Query(Statement):
    """A SELECT (or VALUES / WITH ... SELECT / UNION ...) body parsed by sqlglot.

    ``emit_on_window_close``: the query ended with RisingWave's EMIT ON WINDOW CLOSE (each
    window's result once, final, when it closes); ``emit_span`` is where it was written.
    """

    tree: exp.Expression
    emit_on_window_close: bool = False
    emit_span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: TypeSpec
    nullable: bool = True
    comment: str | None = None
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ComputedColumn:
    """``name AS expr``: a column computed from the others when the source is read."""

    name: str
    expr: exp.Expression
    comment: str | None = None
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WatermarkDef:
    """``WATERMARK FOR column AS expr``."""

    column: str
    expr: exp.Expression
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class OptionItem:
    """``'key' = 'value'`` in a WITH clause, with the span of the key."""

    key: str
    value: str
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CreateTable(Statement):
    name: str
    columns: tuple[ColumnDef | ComputedColumn, ...]
    watermark: WatermarkDef | None = None
    primary_key: tuple[str, ...] = ()
    options: tuple[OptionItem, ...] = ()
    temporary: bool = False
    if_not_exists: bool = False
    comment: str | None = None


@dataclass(frozen=True)
class CreateView(Statement):
    name: str
    query: Query
    columns: tuple[str, ...] = ()
    temporary: bool = False
    if_not_exists: bool = False
    materialized: bool = False  # CREATE MATERIALIZED VIEW: the result is kept in state


@dataclass(frozen=True)
class Drop(Statement):
    kind: str  # "TABLE", "VIEW" or "MATERIALIZED VIEW"
    name: str
    if_exists: bool = False
    temporary: bool = False


@dataclass(frozen=True)
class Show(Statement):
    what: str  # "TABLES", "VIEWS"


@dataclass(frozen=True)
class Describe(Statement):
    name: str


@dataclass(frozen=True)
class Set(Statement):
    """``SET 'k' = 'v'``; ``SET`` alone lists the session's settings (key is None)."""

    key: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class Reset(Statement):
    """``RESET 'k'``; ``RESET`` alone resets every setting (key is None)."""

    key: str | None = None


@dataclass(frozen=True)
class Insert(Statement):
    table: str
    query: Query
    columns: tuple[str, ...] = ()
    overwrite: bool = False


@dataclass(frozen=True)
class StatementSet(Statement):
    """``EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END``: one job, many sinks."""

    inserts: tuple[Insert, ...]


@dataclass(frozen=True)
class Explain(Statement):
    """``EXPLAIN [ANALYZE] [VERBOSE] <query | insert | statement set>``.

    With ``analyze`` the statement runs to its end (an INSERT writes its rows) and the
    physical plan shows what each operator did.
    """

    target: Query | Insert | StatementSet
    verbose: bool = False
    details: tuple[str, ...] = ()  # extra Flink detail words, e.g. CHANGELOG_MODE
    analyze: bool = False


def inserts_of(stmt: Statement) -> tuple[Insert, ...]:
    """The INSERT statements of an INSERT or a statement set."""
    if isinstance(stmt, StatementSet):
        return stmt.inserts
    if isinstance(stmt, Insert):
        return (stmt,)
    raise TypeError(f"{type(stmt).__name__} holds no INSERT")
