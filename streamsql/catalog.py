"""The session's catalog: tables (with connector, columns, watermark) and views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlglot import exp

from streamsql.connectors import REGISTRY
from streamsql.connectors.base import Connector, TableContext
from streamsql.errors import BindError, ConfigError, Span, did_you_mean
from streamsql.expr import compile_expr
from streamsql.parser import ast
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.types import is_time_type, sql_type_name


@dataclass(frozen=True)
class TableColumn:
    """A column of a table: physical (read from the connector) or computed (``expr``)."""

    name: str
    type: pa.DataType
    expr: exp.Expression | None = None
    nullable: bool = True

    @property
    def computed(self) -> bool:
        return self.expr is not None


@dataclass(frozen=True)
class Watermark:
    """``WATERMARK FOR column AS expr``: the column is the table's time attribute."""

    column: str
    expr: exp.Expression

    def describe(self) -> str:
        return f"{self.column}: {to_sql(self.expr)}"


@dataclass(frozen=True, eq=False)
class CatalogTable:
    """A table created with CREATE TABLE: schema, time attribute, connector and options."""

    name: str
    columns: tuple[TableColumn, ...]
    options: Mapping[str, str]
    connector: Connector
    watermark: Watermark | None = None
    primary_key: tuple[str, ...] = ()
    option_spans: Mapping[str, Span] = field(default_factory=dict)
    kind: str = "table"  # or "materialized view"
    #: The processing-time attribute: the column declared ``AS PROCTIME()``, if any.
    proctime_attribute: str | None = None

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, c.nullable) for c in self.columns])

    @property
    def physical_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.type, c.nullable) for c in self.columns if not c.computed]
        )

    @property
    def time_attribute(self) -> str | None:
        return self.watermark.column if self.watermark else None

    def column(self, name: str) -> TableColumn:
        return next(c for c in self.columns if c.name == name)

    @property
    def context(self) -> TableContext:
        return TableContext(self.name, self.physical_schema, self.options, self.primary_key)

    def validate_for(self, role: str) -> dict[str, Any]:
        """Check the options for reading ('source') or writing ('sink') this table."""
        try:
            return self.connector.validate(self.context, role)
        except ConfigError as e:
            raise self.point_at_option(e) from None

    def point_at_option(self, e: ConfigError) -> ConfigError:
        if e.span is None and e.option is not None:
            e.span = self.option_spans.get(e.option) or self.option_spans.get("connector")
        return e

    def describe(self) -> list[tuple[str, str, bool, str]]:
        """Rows of DESCRIBE: name, type, nullable, extras (key, computed, watermark)."""
        rows = []
        for c in self.columns:
            extras = []
            if c.name in self.primary_key:
                extras.append("PRIMARY KEY")
            if c.expr is not None:
                extras.append(f"AS {to_sql(c.expr)}")
            if self.watermark and c.name == self.watermark.column:
                extras.append(f"*ROWTIME* WATERMARK AS {to_sql(self.watermark.expr)}")
            if c.name == self.proctime_attribute:
                extras.append("*PROCTIME*")
            rows.append((c.name, sql_type_name(c.type), c.nullable, " ".join(extras)))
        return rows


@dataclass(frozen=True, eq=False)
class CatalogView:
    """A view: a named query, bound each time it is used."""

    name: str
    query: ast.Query
    columns: tuple[str, ...] = ()
    script: str = ""  # the text the view was defined in, for error carets


class Catalog:
    """Tables and views by name (exact match first, then a unique case-insensitive one)."""

    def __init__(self) -> None:
        self.tables: dict[str, CatalogTable] = {}
        self.views: dict[str, CatalogView] = {}

    # -- lookups ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted([*self.tables, *self.views])

    def resolve(self, name: str) -> str | None:
        """The catalog's spelling of ``name`` (which may be dotted), or None."""
        short = name.split(".")[-1]
        for candidate in (name, short):
            if candidate in self.tables or candidate in self.views:
                return candidate
        lowered = [n for n in self.names() if n.lower() == short.lower()]
        return lowered[0] if len(lowered) == 1 else None

    def lookup(self, name: str, span: Span | None = None) -> CatalogTable | CatalogView:
        resolved = self.resolve(name)
        if resolved is None:
            raise BindError(
                f"unknown table or view '{name}'",
                span=span,
                hint=did_you_mean(name, self.names(), "table")
                or "create it first with CREATE TABLE ... WITH ('connector' = ...)",
            )
        return self.tables.get(resolved) or self.views[resolved]

    def table(self, name: str, span: Span | None = None) -> CatalogTable:
        found = self.lookup(name, span)
        if not isinstance(found, CatalogTable):
            raise BindError(f"'{name}' is a view; INSERT INTO needs a table", span=span)
        return found

    # -- DDL -------------------------------------------------------------------------------

    def create_table(self, stmt: ast.CreateTable) -> CatalogTable | None:
        name = stmt.name.split(".")[-1]
        if self.resolve(name) == name:
            if stmt.if_not_exists:
                return None
            raise BindError(
                f"table or view '{name}' already exists",
                span=stmt.span,
                hint="DROP it first or use CREATE TABLE IF NOT EXISTS",
            )
        table = build_table(name, stmt)
        self.tables[name] = table
        return table

    def add_materialized_view(self, table: CatalogTable) -> None:
        if self.resolve(table.name) == table.name:
            raise BindError(f"table or view '{table.name}' already exists")
        self.tables[table.name] = table

    def create_view(self, stmt: ast.CreateView, script: str = "") -> None:
        name = stmt.name.split(".")[-1]
        if self.resolve(name) == name:
            if stmt.if_not_exists:
                return
            raise BindError(f"table or view '{name}' already exists", span=stmt.span)
        self.views[name] = CatalogView(name, stmt.query, stmt.columns, script or stmt.text)

    def drop(self, stmt: ast.Drop) -> None:
        pool: dict = self.tables if stmt.kind != "VIEW" else self.views
        name = self.resolve(stmt.name)
        wanted = "materialized view" if stmt.kind == "MATERIALIZED VIEW" else "table"
        if name in pool and stmt.kind != "VIEW" and pool[name].kind != wanted:
            raise BindError(
                f"'{name}' is a {pool[name].kind}, not a {wanted}",
                span=stmt.span,
                hint=f"DROP {pool[name].kind.upper()} {name}",
            )
        if name is None or name not in pool:
            if stmt.if_exists:
                return
            raise BindError(
                f"unknown {stmt.kind.lower()} '{stmt.name}'",
                span=stmt.span,
                hint=did_you_mean(stmt.name, list(pool), stmt.kind.lower()),
            )
        del pool[name]


def build_table(name: str, stmt: ast.CreateTable) -> CatalogTable:
    """Check a CREATE TABLE and turn it into a catalog entry."""
    option_spans = {o.key: o.span for o in stmt.options if o.span is not None}
    options = {o.key: o.value for o in stmt.options}
    if "connector" not in options:
        raise ConfigError(
            f"table '{name}' has no 'connector' option",
            span=stmt.span,
            hint="add WITH ('connector' = 'datagen' | 'filesystem' | 'print' | 'blackhole', ...)",
        )
    try:
        connector = REGISTRY.get(options["connector"])
    except ConfigError as e:
        e.span = option_spans.get("connector")
        raise
    seen: set[str] = set()
    physical: list[pa.Field] = []
    for col in stmt.columns:
        if col.name in seen:
            raise BindError(f"column '{col.name}' is declared twice", span=col.span)
        seen.add(col.name)
        if isinstance(col, ast.ColumnDef):
            physical.append(pa.field(col.name, col.type.to_arrow(), col.nullable))
    physical_schema = pa.schema(physical)
    columns: list[TableColumn] = []
    for col in stmt.columns:
        if isinstance(col, ast.ColumnDef):
            columns.append(TableColumn(col.name, col.type.to_arrow(), None, col.nullable))
        else:
            compiled = compile_expr(col.expr, physical_schema)
            columns.append(TableColumn(col.name, compiled.type, col.expr))
    schema = pa.schema([pa.field(c.name, c.type) for c in columns])
    proctime = _proctime(stmt)
    watermark = None
    if stmt.watermark is not None:
        if stmt.watermark.column == proctime:
            raise BindError(
                f"'{proctime}' is a processing-time attribute (AS PROCTIME()); "
                "WATERMARK FOR needs an event-time column",
                span=stmt.watermark.span,
                hint="put the watermark on a TIMESTAMP(3) column of the data; windows on "
                f"DESCRIPTOR({proctime}) need no watermark",
            )
        _no_clock_in(stmt.watermark, proctime)
        watermark = _watermark(stmt.watermark, schema)
    for key in stmt.primary_key:
        if key not in seen:
            raise BindError(
                f"PRIMARY KEY column '{key}' is not a column of '{name}'",
                span=stmt.span,
                hint=did_you_mean(key, list(seen), "column"),
            )
    table = CatalogTable(
        name=name,
        columns=tuple(columns),
        options=options,
        connector=connector,
        watermark=watermark,
        primary_key=stmt.primary_key,
        option_spans=option_spans,
        proctime_attribute=proctime,
    )
    _check_options_known(table)
    return table


def is_proctime_call(e: exp.Expression) -> bool:
    """Whether ``e`` is exactly ``PROCTIME()``, which declares a processing-time attribute."""
    return isinstance(e, exp.Anonymous) and str(e.this).upper() == "PROCTIME" and not e.expressions


def _proctime(stmt: ast.CreateTable) -> str | None:
    """The column declared ``AS PROCTIME()``; a table has at most one."""
    found = [c for c in stmt.columns if isinstance(c, ast.ComputedColumn)]
    found = [c for c in found if is_proctime_call(c.expr)]
    if len(found) > 1:
        raise BindError(
            f"table '{stmt.name}' declares two processing-time attributes, "
            f"'{found[0].name}' and '{found[1].name}'",
            span=found[1].span,
            hint="keep one `AS PROCTIME()` column: a table has one processing time",
        )
    return found[0].name if found else None


def _no_clock_in(wm: ast.WatermarkDef, proctime: str | None) -> None:
    """A watermark follows the rows' event time, never the clock."""
    for node in wm.expr.find_all(exp.Anonymous, exp.Column):
        if is_proctime_call(node) or (isinstance(node, exp.Column) and node.name == proctime):
            raise BindError(
                "the watermark expression reads processing time "
                f"({to_sql(node)}); it must be computed from '{wm.column}'",
                span=span_of(node) or wm.span,
                hint=f"e.g. WATERMARK FOR {wm.column} AS {wm.column} - INTERVAL '5' SECOND",
            )


def _watermark(wm: ast.WatermarkDef, schema: pa.Schema) -> Watermark:
    if wm.column not in schema.names:
        raise BindError(
            f"WATERMARK FOR names unknown column '{wm.column}'",
            span=wm.span,
            hint=did_you_mean(wm.column, schema.names, "column"),
        )
    col_type = schema.field(wm.column).type
    if not is_time_type(col_type):
        raise BindError(
            f"the watermark column '{wm.column}' is {sql_type_name(col_type)}; it must be a "
            "TIMESTAMP(3) or TIMESTAMP_LTZ(3)",
            span=wm.span,
            hint=f"declare it TIMESTAMP(3), or add a computed column such as "
            f"`ts AS TO_TIMESTAMP_LTZ({wm.column}, 3)` and put the watermark on that",
        )
    compiled = compile_expr(wm.expr, schema)
    if not is_time_type(compiled.type):
        raise BindError(
            f"the watermark expression is {sql_type_name(compiled.type)}; it must give a TIMESTAMP",
            span=span_of(wm.expr) or wm.span,
            hint=f"e.g. WATERMARK FOR {wm.column} AS {wm.column} - INTERVAL '5' SECOND",
        )
    return Watermark(wm.column, wm.expr)


def _check_options_known(table: CatalogTable) -> None:
    """Options must be valid for reading or for writing; which one is checked on use."""
    errors = []
    for role in ("source", "sink"):
        try:
            table.connector.validate(table.context, role)
            return
        except ConfigError as e:
            errors.append(e)
    # Prefer the error about an unknown option; fall back to the source role's message.
    unknown = [e for e in errors if "has no" in e.message]
    raise table.point_at_option(unknown[0] if len(unknown) == len(errors) else errors[0])
