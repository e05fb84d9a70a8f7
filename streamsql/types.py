"""SQL types and their Arrow counterparts, both ways."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from streamsql.errors import BindError, Span, did_you_mean

#: Event-time columns (rowtime attributes, window bounds) are millisecond timestamps.
TIME_TYPE = pa.timestamp("ms")

_SIMPLE: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "BOOL": pa.bool_(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INT": pa.int32(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "FLOAT": pa.float32(),
    "REAL": pa.float32(),
    "DOUBLE": pa.float64(),
    "STRING": pa.string(),
    "VARCHAR": pa.string(),
    "CHAR": pa.string(),
    "BYTES": pa.binary(),
    "BINARY": pa.binary(),
    "VARBINARY": pa.binary(),
    "DATE": pa.date32(),
    "TIME": pa.time32("ms"),
}

_PARAMETRIC = {"DECIMAL", "DEC", "NUMERIC", "TIMESTAMP", "TIMESTAMP_LTZ", "ROW", "ARRAY", "MAP"}
KNOWN_TYPES = sorted(set(_SIMPLE) | _PARAMETRIC | {"DOUBLE PRECISION"})


@dataclass(frozen=True)
class TypeSpec:
    """A SQL type as written: ``DECIMAL(10, 2)``, ``ROW<a INT>``, ``TIMESTAMP(3)``."""

    name: str
    params: tuple[int, ...] = ()
    args: tuple[TypeSpec, ...] = ()
    fields: tuple[tuple[str, TypeSpec], ...] = ()
    local_time_zone: bool = False
    nullable: bool = True
    span: Span | None = field(default=None, compare=False)

    def to_arrow(self) -> pa.DataType:
        """The Arrow type that stores values of this SQL type.

        >>> TypeSpec("DECIMAL", (10, 2)).to_arrow()
        Decimal128Type(decimal128(10, 2))
        """
        name = self.name.upper()
        if name in _SIMPLE and not self.args and not self.fields:
            return _SIMPLE[name]
        if name == "DOUBLE PRECISION":
            return pa.float64()
        if name in ("DECIMAL", "DEC", "NUMERIC"):
            precision, scale = (list(self.params) + [10, 0][len(self.params) :])[:2]
            if not 1 <= precision <= 38 or not 0 <= scale <= precision:
                raise BindError(
                    f"DECIMAL({precision}, {scale}) is out of range",
                    span=self.span,
                    hint="precision is 1..38 and 0 <= scale <= precision",
                )
            return pa.decimal128(precision, scale)
        if name in ("TIMESTAMP", "TIMESTAMP_LTZ"):
            precision = self.params[0] if self.params else 6
            unit = (
                "s"
                if precision == 0
                else "ms"
                if precision <= 3
                else "us"
                if precision <= 6
                else "ns"
            )
            ltz = self.local_time_zone or name == "TIMESTAMP_LTZ"
            return pa.timestamp(unit, tz="UTC" if ltz else None)
        if name == "ROW":
            return pa.struct([pa.field(n, t.to_arrow(), t.nullable) for n, t in self.fields])
        if name == "ARRAY" and len(self.args) == 1:
            return pa.list_(self.args[0].to_arrow())
        if name == "MAP" and len(self.args) == 2:
            return pa.map_(self.args[0].to_arrow(), self.args[1].to_arrow())
        raise BindError(
            f"unknown type {self.name!r}",
            span=self.span,
            hint=did_you_mean(self.name.upper(), KNOWN_TYPES, "type"),
        )


def sql_type_name(t: pa.DataType) -> str:
    """The SQL spelling of an Arrow type, as DESCRIBE and EXPLAIN print it.

    >>> sql_type_name(pa.timestamp("ms"))
    'TIMESTAMP(3)'
    """
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    ints = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}
    if pa.types.is_signed_integer(t):
        return ints[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        return ints[t.bit_width] + " UNSIGNED"
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "STRING"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BYTES"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_timestamp(t):
        precision = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        return f"TIMESTAMP_LTZ({precision})" if t.tz else f"TIMESTAMP({precision})"
    if pa.types.is_duration(t):
        return "INTERVAL"
    if pa.types.is_struct(t):
        inner = ", ".join(f"`{f.name}` {sql_type_name(f.type)}" for f in t)
        return f"ROW<{inner}>"
    if pa.types.is_map(t):
        return f"MAP<{sql_type_name(t.key_type)}, {sql_type_name(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"ARRAY<{sql_type_name(t.value_type)}>"
    if pa.types.is_null(t):
        return "NULL"
    if pa.types.is_dictionary(t):
        return sql_type_name(t.value_type)
    return str(t).upper()


def is_time_type(t: pa.DataType) -> bool:
    """Whether a column of this type can carry event time (a rowtime attribute)."""
    return pa.types.is_timestamp(t)


def sum_type(t: pa.DataType) -> pa.DataType:
    """The type (partial) sums of ``t`` values run in, wide enough not to overflow: BIGINT,
    DOUBLE or DECIMAL(38, s).

    >>> sum_type(pa.int32()), sum_type(pa.decimal128(10, 2))
    (DataType(int64), Decimal128Type(decimal128(38, 2)))
    """
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_decimal(t):
        return pa.decimal128(38, t.scale)
    return pa.float64()
