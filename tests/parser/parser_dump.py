"""A readable, stable dump of parsed statements, for the golden files.

Each dataclass prints as its class name and position, then one field per line; fields
left at their default are omitted. Types print as SQL, expressions and queries are
re-rendered with ``streamsql.parser.dialect.to_sql`` next to their script position.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlglot import exp

from streamsql.errors import Span
from streamsql.parser.ast import OptionItem, Query, Statement
from streamsql.parser.dialect import to_sql
from streamsql.parser.spans import span_of
from streamsql.types import TypeSpec

_HIDDEN = {"text", "span"}


def dump_statements(statements: list[Statement]) -> str:
    """One block per statement, separated by blank lines."""
    return "\n\n".join("\n".join(_dump(s, 0)) for s in statements) + "\n"


def type_sql(t: TypeSpec) -> str:
    """A TypeSpec written back as SQL."""
    if t.name == "ROW":
        text = "ROW<" + ", ".join(f"`{n}` {type_sql(f)}" for n, f in t.fields) + ">"
    elif t.args:
        text = f"{t.name}<" + ", ".join(type_sql(a) for a in t.args) + ">"
    else:
        text = t.name + (f"({', '.join(map(str, t.params))})" if t.params else "")
    if t.local_time_zone:
        text += " WITH LOCAL TIME ZONE"
    return text if t.nullable else text + " NOT NULL"


def _at(span: Span | None) -> str:
    return f" @{span.line}:{span.column}" if span is not None else ""


def _dump(value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    header = f"{pad}{type(value).__name__}{_at(getattr(value, 'span', None))}"
    if isinstance(value, Query):
        return [header, f"{pad}  sql: {_inline(value.tree)}"]
    lines = [header]
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if field.name in _HIDDEN or item == field.default:
            continue
        if dataclasses.is_dataclass(item) and not isinstance(item, TypeSpec):
            lines.append(f"{pad}  {field.name}:")
            lines.extend(_dump(item, depth + 2))
        elif isinstance(item, tuple) and item and dataclasses.is_dataclass(item[0]):
            lines.append(f"{pad}  {field.name}:")
            for element in item:
                lines.extend(_dump_element(element, depth + 2))
        else:
            lines.append(f"{pad}  {field.name}: {_inline(item)}")
    return lines


def _dump_element(element: Any, depth: int) -> list[str]:
    if isinstance(element, OptionItem):
        return [f"{'  ' * depth}{element.key!r} = {element.value!r}{_at(element.span)}"]
    return _dump(element, depth)


def _inline(value: Any) -> str:
    if isinstance(value, TypeSpec):
        return type_sql(value) + _at(value.span)
    if isinstance(value, exp.Expression):
        return to_sql(value) + _at(span_of(value))
    return repr(value)
