"""Datagen options checked against the table's columns: one FieldGen per column (and subfield).

Options name a column with ``fields.<column>.<option>``; a ROW subfield is
``fields.<column>.<subfield>.<option>``. An option on a column that does not exist, or one
that does not fit the column's type (``min`` on a STRING, ``max-past`` on an INT), is a
ConfigError naming the option.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from streamsql.errors import ConfigError, closest, did_you_mean
from streamsql.types import sql_type_name

SUFFIXES = ("kind", "min", "max", "max-past", "length", "start", "end", "null-rate")


@dataclass(frozen=True)
class FieldGen:
    """How one column (or ROW subfield, or ARRAY/MAP element) is generated."""

    path: str
    type: pa.DataType
    kind: str = "random"
    min: Any = None
    max: Any = None
    max_past_ms: int = 0
    length: int = 100
    start: Any = None
    end: Any = None
    null_rate: float = 0.0
    children: tuple[FieldGen, ...] = ()

    def sequence_length(self) -> int | None:
        """How many values this field's sequences (its own or a subfield's) can produce."""
        counts = [c.sequence_length() for c in self.children]
        if self.kind == "sequence":
            counts.append(int(self.end - self.start) + 1)
        known = [c for c in counts if c is not None]
        return min(known) if known else None


@dataclass(frozen=True)
class DatagenPlan:
    """The parsed datagen options of a table."""

    fields: dict[str, FieldGen]
    rows_per_second: int
    number_of_rows: int | None
    seed: int = 0

    @property
    def total_rows(self) -> int | None:
        """Rows of a bounded table (the first exhausted sequence ends it), None if unbounded."""
        counts = [f.sequence_length() for f in self.fields.values()]
        counts = [c for c in counts if c is not None]
        if self.number_of_rows is not None:
            counts.append(self.number_of_rows)
        return max(min(counts), 0) if counts else None


def column_paths(schema: pa.Schema) -> dict[str, pa.DataType]:
    """Every column and ROW subfield by dotted path."""
    out: dict[str, pa.DataType] = {}

    def visit(prefix: str, t: pa.DataType) -> None:
        out[prefix] = t
        if pa.types.is_struct(t):
            for f in t:
                visit(f"{prefix}.{f.name}", f.type)

    for f in schema:
        visit(f.name, f.type)
    return out


def split_key(key: str) -> tuple[str, str] | None:
    """('column.path', 'option') of a ``fields.`` key, or None if it ends in no known option."""
    if not key.startswith("fields."):
        return None
    for suffix in SUFFIXES:
        if key.endswith("." + suffix) and len(key) > len("fields.") + len(suffix) + 1:
            return key[len("fields.") : -len(suffix) - 1], suffix
    return None


def check_field_keys(raw: Mapping[str, str], schema: pa.Schema) -> None:
    """Every ``fields.<path>.<option>`` key names a known option of an existing column."""
    paths = column_paths(schema)
    for key in raw:
        if not key.startswith("fields."):
            continue
        parts = split_key(key)
        if parts is None:
            candidates = [f"fields.{p}.{s}" for p in paths for s in SUFFIXES]
            raise ConfigError(
                f"connector 'datagen' has no option '{key}'",
                option=key,
                hint=did_you_mean(key, candidates, "option")
                or "field options are: " + ", ".join(f"fields.<column>.{s}" for s in SUFFIXES),
            )
        path, _ = parts
        if path not in paths:
            near = closest(path, list(paths))
            guess = "did you mean " + " or ".join(repr(p) for p in near) + "? " if near else ""
            raise ConfigError(
                f"connector 'datagen' has no column '{path}' for option '{key}'",
                option=key,
                hint=guess + "columns: " + ", ".join(paths),
            )


def build_fields(options: Mapping[str, Any], schema: pa.Schema) -> dict[str, FieldGen]:
    """FieldGen for every column, from the parsed ``fields.*`` options."""
    by_path: dict[str, dict[str, tuple[str, Any]]] = {}
    for key, value in options.items():
        parts = split_key(key)
        if parts is not None:
            by_path.setdefault(parts[0], {})[parts[1]] = (key, value)
    return {f.name: _field(f.name, f.type, by_path) for f in schema}


def _field(path: str, t: pa.DataType, by_path: dict[str, dict[str, tuple[str, Any]]]) -> FieldGen:
    given = by_path.get(path, {})
    values: dict[str, Any] = {}
    for suffix, (key, raw) in given.items():
        values[suffix] = _check(suffix, key, raw, path, t)
    kind = values.get("kind", "random")
    _check_kind(kind, given, path, t)
    children: tuple[FieldGen, ...] = ()
    if pa.types.is_struct(t):
        children = tuple(_field(f"{path}.{f.name}", f.type, by_path) for f in t)
    gen = FieldGen(
        path,
        t,
        kind=kind,
        min=values.get("min"),
        max=values.get("max"),
        max_past_ms=values.get("max-past", 0),
        length=values.get("length", 100),
        start=values.get("start"),
        end=values.get("end"),
        null_rate=values.get("null-rate", 0.0),
        children=children,
    )
    for low, high in (("min", "max"), ("start", "end")):
        if (
            values.get(low) is not None
            and values.get(high) is not None
            and values[low] > values[high]
        ):
            key = given[high][0]
            raise ConfigError(f"option '{key}' is below '{given[low][0]}'", option=key)
    return gen


def _element(t: pa.DataType) -> pa.DataType:
    """The type that value options apply to: the element type of an ARRAY/MAP value."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _element(t.value_type)
    if pa.types.is_map(t):
        return _element(t.item_type)
    return t


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _check(suffix: str, key: str, raw: Any, path: str, t: pa.DataType) -> Any:
    """One field option's value, checked against the column's type."""
    elem = _element(t)
    fits = {
        "kind": True,
        "null-rate": True,
        "min": _numeric(elem),
        "max": _numeric(elem),
        "start": _numeric(t) or pa.types.is_string(t),
        "end": _numeric(t) or pa.types.is_string(t),
        "max-past": pa.types.is_timestamp(elem) or pa.types.is_date(elem),
        "length": pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_list(t)
        or pa.types.is_map(t)
        or pa.types.is_string(elem)
        or pa.types.is_binary(elem),
    }[suffix]
    if not fits:
        what = {
            "min": "numeric columns",
            "max": "numeric columns",
            "start": "numeric and STRING columns",
            "end": "numeric and STRING columns",
            "max-past": "TIMESTAMP and DATE columns",
            "length": "STRING, BYTES, ARRAY and MAP columns",
        }[suffix]
        raise ConfigError(
            f"option '{key}' does not apply to column '{path}' of type {sql_type_name(t)}",
            option=key,
            hint=f"'{suffix}' applies to {what}",
        )
    try:
        if suffix == "null-rate":
            rate = float(raw)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{raw!r} is not between 0 and 1")
            return rate
        if suffix == "length":
            if raw < 0:
                raise ValueError(f"{raw} is negative")
            return raw
        if suffix in ("min", "max"):
            return _number(raw, elem)
        if suffix in ("start", "end"):
            return _number(raw, t if _numeric(t) else pa.int64())
    except (ValueError, ArithmeticError) as e:
        raise ConfigError(f"option '{key}': {e}", option=key) from None
    return raw


def _number(raw: str, t: pa.DataType) -> int | float | decimal.Decimal:
    if pa.types.is_integer(t):
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
        bits = t.bit_width - (1 if pa.types.is_signed_integer(t) else 0)
        low = -(2**bits) if pa.types.is_signed_integer(t) else 0
        if not low <= value < 2**bits:
            raise ValueError(f"{value} does not fit {sql_type_name(t)}")
        return value
    if pa.types.is_decimal(t):
        try:
            return decimal.Decimal(raw)
        except decimal.InvalidOperation:
            raise ValueError(f"{raw!r} is not a number") from None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None


def _check_kind(kind: str, given: Mapping[str, tuple[str, Any]], path: str, t: pa.DataType) -> None:
    if kind == "sequence":
        if not (_numeric(t) or pa.types.is_string(t)):
            raise ConfigError(
                f"option '{given['kind'][0]}': a sequence cannot fill column '{path}' of type "
                f"{sql_type_name(t)}",
                option=given["kind"][0],
                hint="sequences fill numeric and STRING columns; use 'random' for the others",
            )
        for need in ("start", "end"):
            if need not in given:
                raise ConfigError(
                    f"a sequence needs option 'fields.{path}.{need}'", option=given["kind"][0]
                )
        wrong = [s for s in ("min", "max", "max-past", "length") if s in given]
    else:
        wrong = [s for s in ("start", "end") if s in given]
    if wrong:
        key = given[wrong[0]][0]
        raise ConfigError(
            f"option '{key}' does not apply to a {kind} field",
            option=key,
            hint="start/end belong to 'sequence' fields; min/max/max-past/length to 'random' ones",
        )
