"""Tree to ``TypeSpec``: the data-type rules of the grammar, and names.

``AstBuilder`` in ``transformer.py`` inherits these callbacks; they live apart because a
type is a small language of its own (``ROW<a INT, b ARRAY<MAP<STRING, INT NOT NULL>>>``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from streamsql.errors import BindError, ParseError, Span
from streamsql.parser.positions import LineIndex
from streamsql.types import TypeSpec


def unquote(tok: Token) -> str:
    """The text of a name or string token without its quotes.

    >>> unquote(Token("STRING", "'it''s'"))
    "it's"
    """
    text = str(tok)
    if tok.type in ("QUOTED_NAME", "STRING"):
        quote = text[0]
        return text[1:-1].replace(quote * 2, quote)
    return text


def validate_type(spec: TypeSpec) -> None:
    """Raise a ParseError now for a type that does not exist ("BIGNT")."""
    try:
        spec.to_arrow()
    except BindError as err:
        raise ParseError(err.message, span=err.span or spec.span, hint=err.hint) from None


@v_args(meta=True)
class TypeRules(Transformer):
    """Callbacks for the ``data_type`` rules and for ``name``."""

    def __init__(self, index: LineIndex) -> None:
        super().__init__()
        self.index = index

    def _span(self, meta: Meta) -> Span:
        return self.index.span(meta.start_pos, meta.end_pos)

    def _error(self, message: str, span: Span | None, hint: str | None = None) -> ParseError:
        return ParseError(message, span=span, sql=self.index.text, hint=hint)

    def name(self, meta: Meta, children: list[Token]) -> str:
        return unquote(children[0])

    def data_type(self, meta: Meta, children: list[Any]) -> TypeSpec:
        body, nullable = children
        return replace(body, nullable=nullable is not False, span=self._span(meta))

    def not_null(self, meta: Meta, children: list[Any]) -> bool:
        return False

    def explicit_null(self, meta: Meta, children: list[Any]) -> bool:
        return True

    def named_type(self, meta: Meta, children: list[Any]) -> TypeSpec:
        word, precision, params = children
        name = str(word).upper() + (" PRECISION" if precision is not None else "")
        return TypeSpec(name, params or ())

    def type_params(self, meta: Meta, children: list[Token | None]) -> tuple[int, ...]:
        return tuple(int(c) for c in children if c is not None)

    def timestamp_type(self, meta: Meta, children: list[Any]) -> TypeSpec:
        keyword, params, zone = children
        if zone == "local" and keyword.type == "TIME":
            raise self._error(
                "TIME WITH LOCAL TIME ZONE is not a Flink type",
                self._span(meta),
                hint="use TIMESTAMP_LTZ(3) or TIMESTAMP(3) WITH LOCAL TIME ZONE",
            )
        return TypeSpec(keyword.type, params or (), local_time_zone=zone == "local")

    def with_local_time_zone(self, meta: Meta, children: list[Any]) -> str:
        return "local"

    def without_time_zone(self, meta: Meta, children: list[Any]) -> str:
        return "none"

    def row_type(self, meta: Meta, children: list[Any]) -> TypeSpec:
        fields = [c for c in children if c is not None]
        seen: set[str] = set()
        for field_name, _spec, span in fields:
            if field_name in seen:
                raise self._error(f"duplicate field {field_name!r} in ROW", span)
            seen.add(field_name)
        return TypeSpec("ROW", fields=tuple((n, t) for n, t, _span in fields))

    def row_field(self, meta: Meta, children: list[Any]) -> tuple[str, TypeSpec, Span]:
        # TypeSpec has no place for a field's COMMENT; it is read and dropped.
        field_name, spec, _comment = children
        return field_name, spec, self._span(meta)

    def array_type(self, meta: Meta, children: list[TypeSpec]) -> TypeSpec:
        return TypeSpec("ARRAY", args=(children[0],))

    def map_type(self, meta: Meta, children: list[TypeSpec]) -> TypeSpec:
        return TypeSpec("MAP", args=(children[0], children[1]))
