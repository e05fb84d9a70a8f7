"""Text to typed values: CSV fields and JSON values converted a whole chunk at a time.

pyarrow's cast converts a column when it accepts every value. Otherwise (a bad value, or a
type pyarrow cannot parse) DuckDB SQL converts it: every conversion is a value expression and
an ``ok`` expression, and a row whose text is not NULL but is not ok is a parse error. One
query converts all such columns of a chunk, so bad rows are found without a loop over rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql import duck
from streamsql.connectors.formats.common import shorten
from streamsql.errors import ConfigError
from streamsql.types import sql_type_name

_INTS = {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}
_UINTS = {8: "UTINYINT", 16: "USMALLINT", 32: "UINTEGER", 64: "UBIGINT"}
_INT_TEXT = r"'\s*[+-]?[0-9]+\s*'"


def duck_type(t: pa.DataType) -> str:
    """The DuckDB type that holds values of an Arrow type.

    >>> duck_type(pa.list_(pa.timestamp("ms")))
    'TIMESTAMP[]'
    """
    if pa.types.is_signed_integer(t):
        return _INTS[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        return _UINTS[t.bit_width]
    if pa.types.is_timestamp(t):
        if t.tz:
            return "TIMESTAMPTZ"
        return "TIMESTAMP_NS" if t.unit == "ns" else "TIMESTAMP"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{duck.quote(f.name)} {duck_type(f.type)}" for f in t) + ")"
    if pa.types.is_map(t):
        return f"MAP({duck_type(t.key_type)}, {duck_type(t.item_type)})"
    simple = {
        pa.bool_(): "BOOLEAN",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.binary(): "BLOB",
        pa.large_binary(): "BLOB",
        pa.date32(): "DATE",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_time(t):
        return "TIME"
    raise ConfigError(f"type {t} cannot be read from text", option="format")


def is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def scalar_sql(x: str, t: pa.DataType) -> tuple[str, str]:
    """(value, ok) SQL converting the text expression ``x`` (not NULL) to scalar type ``t``."""
    if is_text(t):
        return x, "true"
    if pa.types.is_boolean(t):
        value = f"CASE lower(trim({x})) WHEN 'true' THEN true WHEN 'false' THEN false END"
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        value = f"TRY(from_base64(trim({x})))"  # Flink writes BYTES as base64 text
    else:
        value = f"TRY_CAST({x} AS {duck_type(t)})"
    ok = f"({value}) IS NOT NULL"
    if pa.types.is_integer(t):
        # DuckDB would round '1.5' into an integer; Flink (Long.parseLong) refuses it.
        ok = f"(regexp_full_match({x}, {_INT_TEXT}) AND {ok})"
    return value, ok


def split_sql(x: str, t: pa.DataType, delimiter: str) -> tuple[str, str]:
    """(value, ok) for a CSV ARRAY or ROW field whose elements are joined by ``delimiter``."""
    d = "'" + delimiter.replace("'", "''") + "'"
    parts = f"string_split({x}, {d})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        _require_scalar(t.value_type, t)
        value, ok = scalar_sql("e", t.value_type)
        elem = "NULLIF(e, '')"
        value_fn = f"lambda e: CASE WHEN {elem} IS NULL THEN NULL ELSE {value} END"
        ok_fn = f"lambda e: {elem} IS NULL OR {ok}"
        return (
            f"list_transform({parts}, {value_fn})",
            f"list_bool_and(list_transform({parts}, {ok_fn}))",
        )
    if pa.types.is_struct(t):
        values, oks = [], [f"len({parts}) = {t.num_fields}"]
        for i, f in enumerate(t):
            _require_scalar(f.type, t)
            part = f"NULLIF({parts}[{i + 1}], '')"
            value, ok = scalar_sql(part, f.type)
            values.append(
                f"{duck.quote(f.name)} := CASE WHEN {part} IS NULL THEN NULL ELSE {value} END"
            )
            oks.append(f"({part} IS NULL OR {ok})")
        return f"struct_pack({', '.join(values)})", "(" + " AND ".join(oks) + ")"
    return scalar_sql(x, t)


def json_sql(x: str, t: pa.DataType) -> tuple[str, str]:
    """(value, ok) for a nested JSON value (object or array text) of a ROW, ARRAY or MAP column."""
    structure = "'" + json.dumps(_structure(t)).replace("'", "''") + "'"
    guarded = f"CASE WHEN json_valid({x}) THEN {x} END"
    value = f"json_transform({guarded}, {structure})"
    return value, f"(json_valid({x}) AND ({value}) IS NOT NULL)"


def _structure(t: pa.DataType) -> object:
    if pa.types.is_struct(t):
        return {f.name: _structure(f.type) for f in t}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [_structure(t.value_type)]
    return duck_type(t)


def _require_scalar(t: pa.DataType, outer: pa.DataType) -> None:
    if pa.types.is_nested(t):
        raise ConfigError(
            f"the csv format cannot read nested type {t} inside {outer}",
            option="format",
            hint="use 'format' = 'json' for nested ROW/ARRAY/MAP columns",
        )


def fast_cast(text: pa.Array, t: pa.DataType) -> tuple[pa.Array, np.ndarray | None] | None:
    """pyarrow's conversion of a text column, or None where DuckDB must do it.

    Used only where what pyarrow accepts is a subset of what the DuckDB conversion accepts
    (and gives the same value), so a value never converts differently depending on the other
    values of its chunk. BOOLEAN is checked here completely and returns its bad rows.
    """
    if is_text(t):
        return text.cast(t), None
    if pa.types.is_boolean(t):
        word = pc.utf8_lower(pc.utf8_trim_whitespace(text))
        ok = pc.or_kleene(pc.is_null(word), pc.is_in(word, pa.array(["true", "false"])))
        return pc.equal(word, "true"), ~ok.to_numpy(zero_copy_only=False)
    simple = (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date32(t)
        or (pa.types.is_timestamp(t) and t.tz is None)
    )
    if not simple:
        return None
    if pa.types.is_integer(t) and _has_x(text):
        return None  # pyarrow reads '0x10' as 16; Flink refuses it
    if pa.types.is_timestamp(t) and pc.any(pc.equal(pc.utf8_length(text), 13)).as_py():
        return None  # pyarrow reads 'yyyy-MM-dd HH'; DuckDB does not
    try:
        return pc.cast(text, t), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _has_x(text: pa.Array) -> bool:
    """Whether any value holds an 'x' or 'X' (a scan of the text bytes)."""
    data = text.buffers()[2]
    if data is None:
        return False
    return bool(((np.frombuffer(data, dtype=np.uint8) | 0x20) == ord("x")).any())


SqlFor = Callable[[str, pa.DataType], tuple[str, str]]


def convert_texts(
    con: duck.Connection, texts: Sequence[pa.Array], fields: Sequence[pa.Field], sql_for: SqlFor
) -> tuple[list[pa.Array], dict[int, np.ndarray]]:
    """Typed columns from text columns (NULL where there is no value), and for each column
    with values that do not convert, the mask of those rows.

    pyarrow converts the columns it can; the others go through one DuckDB query whose
    conversion SQL ``sql_for(text_expr, type)`` gives as (value, ok).
    """
    columns, bad, slow = list(texts), {}, []
    for i, (text, f) in enumerate(zip(texts, fields, strict=True)):
        fast = None if pa.types.is_nested(f.type) else fast_cast(text, f.type)
        if fast is None:
            slow.append(i)
            continue
        columns[i] = fast[0]
        if fast[1] is not None and fast[1].any():
            bad[i] = fast[1]
    if slow:
        items = []
        for n, i in enumerate(slow):
            value, ok = sql_for(f"__r{n}", fields[i].type)
            items.append(f"CASE WHEN __r{n} IS NULL THEN NULL ELSE {value} END")
            items.append(f"NOT coalesce(__r{n} IS NULL OR {ok}, false)")
        text = pa.table({f"__r{n}": texts[i] for n, i in enumerate(slow)})
        result = duck.query_arrow(con, f"SELECT {', '.join(items)} FROM __text", __text=text)
        for n, i in enumerate(slow):
            columns[i] = _cast(result.column(2 * n), fields[i].type)
            mask = _mask(result.column(2 * n + 1))
            if mask.any():
                bad[i] = mask
    return columns, bad


def describe_bad(
    bad: dict[int, np.ndarray], texts: Sequence[pa.Array], fields: Sequence[pa.Field]
) -> tuple[np.ndarray, str]:
    """The rows with a bad value, and what is wrong with the first of them."""
    rows = np.logical_or.reduce(list(bad.values()))
    r = int(np.argmax(rows))
    i = min(i for i, mask in bad.items() if mask[r])
    text = shorten(str(texts[i][r].as_py()))
    name, t = fields[i].name, fields[i].type
    return rows, f"'{text}' is not a valid {sql_type_name(t)} for column '{name}'"


def _mask(values: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _cast(values: pa.ChunkedArray, t: pa.DataType) -> pa.Array:
    arr = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if arr.type == t:
        return arr
    # Only timestamp/time precision can be lost here (truncated, as Flink does); every other
    # type already has DuckDB's exact counterpart.
    return arr.cast(t, safe=False)
