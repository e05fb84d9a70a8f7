"""Tree to statement dataclasses: the lark transformer that builds ``ast.py`` objects.

Query bodies and column expressions arrive as spans of text; ``fragments.py`` parses them
with sqlglot. Checks that need a whole statement (one WATERMARK, NOT ENFORCED keys, unique
column names) are made here, with positions, so that they read like syntax errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from lark import Token, Tree, v_args
from lark.tree import Meta

from streamsql.errors import Span
from streamsql.parser.ast import (
    ColumnDef,
    ComputedColumn,
    CreateTable,
    CreateView,
    Describe,
    Drop,
    Explain,
    Insert,
    OptionItem,
    Query,
    Reset,
    Set,
    Show,
    Statement,
    StatementSet,
    WatermarkDef,
)
from streamsql.parser.fragments import parse_expression, parse_query, split_emit_clause
from streamsql.parser.type_rules import TypeRules, unquote, validate_type

S = TypeVar("S", bound=Statement)


@dataclass(frozen=True)
class _Key:
    """A PRIMARY KEY clause while its table is being built."""

    columns: tuple[str, ...]
    span: Span


@v_args(meta=True)
class AstBuilder(TypeRules):
    """Builds the list of statements of one script; make one per script."""

    def _source(self, meta: Meta) -> dict[str, Any]:
        """The ``text`` and ``span`` of the statement read by one rule."""
        text = self.index.text[meta.start_pos : meta.end_pos].rstrip()
        return {"text": text, "span": self.index.span(meta.start_pos, meta.start_pos + len(text))}

    def _statement(self, cls: type[S], meta: Meta, **fields: Any) -> S:
        return cls(**fields, **self._source(meta))

    # ----------------------------------------------------------------- script

    def start(self, meta: Meta, children: list[Statement]) -> list[Statement]:
        return list(children)

    # ----------------------------------------------------------- CREATE TABLE

    def create_table(self, meta: Meta, children: list[Any]) -> CreateTable:
        temporary, if_not_exists, name, *elements, comment, options = children
        columns: list[ColumnDef | ComputedColumn] = []
        watermarks: list[WatermarkDef] = []
        keys: list[_Key] = []
        for element in elements:
            for item in element if isinstance(element, tuple) else (element,):
                match item:
                    case WatermarkDef():
                        watermarks.append(item)
                    case _Key():
                        keys.append(item)
                    case _:
                        columns.append(item)
        self._check_columns(columns)
        if len(watermarks) > 1:
            raise self._error("a table can have only one WATERMARK", watermarks[1].span)
        if len(keys) > 1:
            raise self._error("a table can have only one PRIMARY KEY", keys[1].span)
        return self._statement(
            CreateTable,
            meta,
            name=name,
            columns=tuple(columns),
            watermark=watermarks[0] if watermarks else None,
            primary_key=keys[0].columns if keys else (),
            options=options or (),
            temporary=temporary is not None,
            if_not_exists=bool(if_not_exists),
            comment=comment,
        )

    def _check_columns(self, columns: list[ColumnDef | ComputedColumn]) -> None:
        seen: set[str] = set()
        for column in columns:
            if column.name in seen:
                raise self._error(f"duplicate column {column.name!r}", column.span)
            seen.add(column.name)

    def if_not_exists(self, meta: Meta, children: list[Any]) -> bool:
        return True

    def if_exists(self, meta: Meta, children: list[Any]) -> bool:
        return True

    def table_comment(self, meta: Meta, children: list[Token]) -> str:
        return unquote(children[0])

    def column_comment(self, meta: Meta, children: list[Token]) -> str:
        return unquote(children[0])

    def column(self, meta: Meta, children: list[Any]) -> ColumnDef | tuple[ColumnDef, _Key]:
        name, spec, key, comment = children
        validate_type(spec)
        column = ColumnDef(name, spec, spec.nullable, comment, span=self._span(meta))
        if key is None:
            return column
        return column, replace(key, columns=(name,))

    def column_primary_key(self, meta: Meta, children: list[Any]) -> _Key:
        return self._key((), meta, enforced_ok=children[0] is not None)

    def primary_key(self, meta: Meta, children: list[Any]) -> _Key:
        _constraint, columns, not_enforced = children
        return self._key(columns, meta, enforced_ok=not_enforced is not None)

    def _key(self, columns: tuple[str, ...], meta: Meta, enforced_ok: bool) -> _Key:
        span = self._span(meta)
        if not enforced_ok:
            raise self._error(
                "PRIMARY KEY must be declared NOT ENFORCED",
                span,
                hint="Flink SQL requires NOT ENFORCED because it does not check that keys "
                "are unique: write PRIMARY KEY (...) NOT ENFORCED",
            )
        return _Key(columns, span)

    def not_enforced(self, meta: Meta, children: list[Any]) -> bool:
        return True

    def computed_column(self, meta: Meta, children: list[Any]) -> ComputedColumn:
        name, text = children
        start, end, comment = self._expression_extent(text)
        expr = parse_expression(self.index, start, end)
        return ComputedColumn(name, expr, comment, span=self._span(meta))

    def watermark(self, meta: Meta, children: list[Any]) -> WatermarkDef:
        column, text = children
        expr = parse_expression(self.index, text.meta.start_pos, text.meta.end_pos)
        return WatermarkDef(column, expr, span=self._span(meta))

    def _expression_extent(self, text: Tree) -> tuple[int, int, str | None]:
        """Where an ``expr_text`` starts and ends, less a trailing ``COMMENT 'text'``."""
        parts = text.children
        if (
            len(parts) >= 3
            and isinstance(parts[-2], Token)
            and parts[-2].type == "EXPR_ATOM"
            and parts[-2].upper() == "COMMENT"
            and isinstance(parts[-1], Token)
            and parts[-1].type == "STRING"
        ):
            last = parts[-3]
            end = last.end_pos if isinstance(last, Token) else last.meta.end_pos
            return text.meta.start_pos, end, unquote(parts[-1])
        return text.meta.start_pos, text.meta.end_pos, None

    def with_options(self, meta: Meta, children: list[Any]) -> tuple[OptionItem, ...]:
        return tuple(c for c in children if c is not None)

    def option(self, meta: Meta, children: list[Token]) -> OptionItem:
        key, value = children
        span = self.index.span(key.start_pos, key.end_pos)
        return OptionItem(unquote(key), unquote(value), span=span)

    # ------------------------------------------------- views, DROP, SHOW, SET

    def create_view(self, meta: Meta, children: list[Any]) -> CreateView:
        temporary, materialized, if_not_exists, name, columns, query = children
        return self._statement(
            CreateView,
            meta,
            name=name,
            query=query,
            columns=columns or (),
            temporary=temporary is not None,
            if_not_exists=bool(if_not_exists),
            materialized=materialized is not None,
        )

    def drop_table(self, meta: Meta, children: list[Any]) -> Drop:
        return self._drop("TABLE", meta, children)

    def drop_view(self, meta: Meta, children: list[Any]) -> Drop:
        temporary, materialized, *rest = children
        kind = "MATERIALIZED VIEW" if materialized is not None else "VIEW"
        return self._drop(kind, meta, [temporary, *rest])

    def _drop(self, kind: str, meta: Meta, children: list[Any]) -> Drop:
        temporary, if_exists, name = children
        return self._statement(
            Drop,
            meta,
            kind=kind,
            name=name,
            if_exists=bool(if_exists),
            temporary=temporary is not None,
        )

    def show(self, meta: Meta, children: list[Token]) -> Show:
        return self._statement(Show, meta, what=children[0].type)

    def describe(self, meta: Meta, children: list[str]) -> Describe:
        return self._statement(Describe, meta, name=children[0])

    def set_stmt(self, meta: Meta, children: list[Token | None]) -> Set:
        key, value = (None if c is None else unquote(c) for c in children)
        return self._statement(Set, meta, key=key, value=value)

    def reset_stmt(self, meta: Meta, children: list[Token | None]) -> Reset:
        key = None if children[0] is None else unquote(children[0])
        return self._statement(Reset, meta, key=key)

    # ------------------------------------------------------ INSERT, EXPLAIN

    def insert(self, meta: Meta, children: list[Any]) -> Insert:
        overwrite = isinstance(children[0], Token) and children[0].type == "OVERWRITE"
        table, columns, query = children[1:] if overwrite else children
        return self._statement(
            Insert, meta, table=table, query=query, columns=columns or (), overwrite=overwrite
        )

    def execute_insert(self, meta: Meta, children: list[Insert]) -> Insert:
        return replace(children[0], **self._source(meta))

    def statement_set(self, meta: Meta, children: list[Insert]) -> StatementSet:
        if not children:
            raise self._error(
                "a statement set needs at least one INSERT",
                self._span(meta),
                hint="EXECUTE STATEMENT SET BEGIN INSERT INTO ...; INSERT INTO ...; END",
            )
        return self._statement(StatementSet, meta, inserts=tuple(children))

    def explain(self, meta: Meta, children: list[Any]) -> Explain:
        analyze, *details, target = children
        words = tuple(d for d in details if d is not None)
        return self._statement(
            Explain,
            meta,
            target=target,
            verbose="VERBOSE" in words,
            details=tuple(w for w in words if w != "VERBOSE"),
            analyze=analyze is not None,
        )

    def explain_detail(self, meta: Meta, children: list[Token]) -> str:
        return children[0].type

    # ---------------------------------------------------------------- queries

    def query(self, meta: Meta, children: list[Any]) -> Query:
        source = self._source(meta)
        end, emit = split_emit_clause(self.index, meta.start_pos, source["span"].end)
        tree = parse_query(self.index, meta.start_pos, end)
        if emit is None:
            return Query(tree, **source)
        emit_span = self.index.span(emit, source["span"].end)
        return Query(tree, emit_on_window_close=True, emit_span=emit_span, **source)

    # ------------------------------------------------------------------ names

    def qualified_name(self, meta: Meta, children: list[str]) -> str:
        return ".".join(children)

    def name_list(self, meta: Meta, children: list[str]) -> tuple[str, ...]:
        return tuple(children)
