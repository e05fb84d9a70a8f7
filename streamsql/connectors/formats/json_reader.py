"""Read JSON-lines files as Flink's json format does: one object per line, fields by name.

A block of lines becomes one Arrow string column; one DuckDB query pulls the declared fields
out of every line as text, by exact (case-sensitive) name, and the text is converted as the
csv format's is. A line that is not a JSON object, or holds a value that does not convert, is
malformed. Extra fields are ignored; a missing field is NULL unless
'json.fail-on-missing-field' is set. JSON numbers are read as doubles, so a DECIMAL beyond
~15 significant digits should be written as a JSON string to stay exact; nested ROW fields
are matched by DuckDB's json_transform, which ignores the case of names. Timestamps are
accepted in both the SQL form ('2020-04-15 08:05:00.123') and ISO-8601
('2020-04-15T08:05:00.123Z'), whatever 'json.timestamp-format.standard' says (that option
shapes what the sink writes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql import duck
from streamsql.connectors.formats.common import Chunk, Problems, ReadSpec, make_batch, shorten
from streamsql.connectors.formats.text_blocks import LineBlock, iter_line_blocks
from streamsql.connectors.formats.text_casts import (
    convert_texts,
    describe_bad,
    is_text,
    json_sql,
    scalar_sql,
)
from streamsql.errors import ExecError

_WHITESPACE = np.array([9, 10, 13, 32], dtype=np.uint8)


def read_json_chunks(path: str, spec: ReadSpec, start: Mapping[str, int]) -> Iterator[Chunk]:
    """Decoded chunks of a JSON-lines file from ``start`` ({'offset', 'line'}) to its end."""
    block_bytes = min(16 << 20, max(1 << 20, spec.batch_size * 256))
    blocks = iter_line_blocks(
        path,
        offset=start.get("offset", 0),
        first_line=start.get("line", 1),
        block_bytes=block_bytes,
    )
    for block in blocks:
        yield _decode(path, block, spec)


def _decode(path: str, block: LineBlock, spec: ReadSpec) -> Chunk:
    end = {"offset": block.end_offset, "line": block.first_line + block.count}
    first = _first_solid_bytes(block)
    rows = np.flatnonzero(first != 0)  # blank lines are skipped, not errors
    if not len(rows):
        columns = [pa.array([], f.type) for f in spec.fields]
        return Chunk(make_batch(columns, spec.out_schema, 0), end, rows, rows)
    lines = _line_strings(path, block).take(pa.array(rows))
    fail_missing = bool(spec.options.get("json.fail-on-missing-field", False))
    texts, ok, missing = _extract(spec, lines, fail_missing)
    ok &= first[rows] == ord("{")  # anything else is not a JSON object
    fields = spec.fields
    columns, bad = convert_texts(spec.con, texts, fields, _field_sql)
    row_bad = np.logical_or.reduce([~ok, *missing, *bad.values()])
    if row_bad.any():
        r = int(np.argmax(row_bad))
        problem = _describe(lines[r].as_py(), bool(ok[r]), spec, [m[r] for m in missing])
        if problem is None:  # the first bad line holds a value that does not convert
            problem = describe_bad(bad, texts, fields)[1]
        problems = Problems()
        problems.add(block.lines[rows[row_bad]], lambda _: problem)
        problems.settle(path, spec)
        good = pa.array(~row_bad)
        columns = [c.filter(good) for c in columns]
        rows = rows[~row_bad]
    batch = make_batch(columns, spec.out_schema, len(rows))
    return Chunk(batch, end, block.next_offsets[rows], block.lines[rows])


def _extract(
    spec: ReadSpec, lines: pa.Array, fail_missing: bool
) -> tuple[list[pa.Array], np.ndarray, list[np.ndarray]]:
    """Every declared field of every line as text (objects and arrays as JSON text), which
    lines are valid JSON, and (with fail-on-missing-field) which fields each line lacks.
    """
    fields = spec.fields
    paths = "[" + ", ".join(_path(f.name) for f in fields) + "]"
    table = pa.table({"l": lines})
    outer = [f"__v[{i + 1}] AS __r{i}" for i in range(len(fields))]
    if fail_missing:
        outer += [f"__p[{i + 1}] IS NULL AS __m{i}" for i in range(len(fields))]
    result = None
    if fields:
        # Optimistic: one parse per line; malformed JSON anywhere makes DuckDB refuse it all.
        inner = [f"json_extract_string(l, {paths}) AS __v"]
        if fail_missing:
            inner.append(f"json_extract(l, {paths}) AS __p")
        sql = f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM __lines)"
        try:
            result = duck.query_arrow(spec.con, sql, __lines=table)
            ok = np.ones(len(lines), dtype=bool)
        except duck.DuckDBError:
            result = None
    if result is None:
        valid = "CASE WHEN json_valid(l) THEN l END"
        inner = ["json_valid(l) AS __ok"]
        if fields:
            inner.append(f"json_extract_string({valid}, {paths}) AS __v")
        if fail_missing:
            inner.append(f"json_extract({valid}, {paths}) AS __p")
        sql = (
            f"SELECT __ok, {', '.join(outer) or '1'} FROM (SELECT {', '.join(inner)} FROM __lines)"
        )
        result = duck.query_arrow(spec.con, sql, __lines=table)
        ok = _flag(result.column(0))
        result = result.drop_columns([result.schema.names[0]])
    n = len(fields)
    texts = [_text(result.column(i), f.type) for i, f in enumerate(fields)]
    missing = [_flag(result.column(n + i)) & ok for i in range(n)] if fail_missing else []
    return texts, ok, missing


def _text(values: pa.ChunkedArray, t: pa.DataType) -> pa.Array:
    text = values.combine_chunks().cast(pa.string())
    if is_text(t):
        return text
    # An empty string is NULL for non-string types, as in the csv format.
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _flag(values: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _first_solid_bytes(block: LineBlock) -> np.ndarray:
    """The first non-blank byte of every line (0 for a blank line).

    Only the rare lines that start with a blank need a look past their first byte.
    """
    first = block.first_bytes()
    doubtful = np.isin(first, _WHITESPACE)
    if doubtful.any():
        starts, sizes = block.starts[doubtful], block.lengths()[doubtful]
        begins = np.cumsum(sizes) - sizes  # where each line's bytes start in `picked`
        picked = block.data[np.repeat(starts - begins, sizes) + np.arange(sizes.sum())]
        solid = np.flatnonzero(~np.isin(picked, _WHITESPACE))
        if not len(solid):
            first[doubtful] = 0
            return first
        at = np.minimum(np.searchsorted(solid, begins), len(solid) - 1)
        inside = (solid[at] >= begins) & (solid[at] < begins + sizes)
        first[doubtful] = np.where(inside, picked[solid[at]], 0)
    return first


def _line_strings(path: str, block: LineBlock) -> pa.StringArray:
    """Every line of the block as a string (with its line break: JSON ignores it)."""
    offsets = np.append(block.starts, len(block.data)).astype(np.int32)
    arr = pa.StringArray.from_buffers(block.count, pa.py_buffer(offsets), pa.py_buffer(block.data))
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        first, last = int(block.lines[0]), int(block.lines[-1])
        raise ExecError(f"{path}, lines {first}-{last}: the text is not valid UTF-8") from None
    return arr


def _field_sql(raw: str, t: pa.DataType) -> tuple[str, str]:
    """(value, ok) SQL for one field's text: nested values are JSON text, others scalars."""
    return json_sql(raw, t) if pa.types.is_nested(t) else scalar_sql(raw, t)


def _path(name: str) -> str:
    return "'$.\"" + name.replace("'", "''").replace('"', '\\"') + "\"'"


def _describe(line: str, ok: bool, spec: ReadSpec, missing: list[bool]) -> str | None:
    """What is wrong with a malformed line, unless it is a value (only built for the first)."""
    if not ok:
        try:
            json.loads(line)
        except ValueError as e:
            return f"invalid JSON ({e.args[0].split(':')[0]}): {shorten(line.strip())}"
        return f"not a JSON object: {shorten(line.strip())}"
    for f, lacks in zip(spec.fields, missing, strict=False):
        if lacks:
            return f"field '{f.name}' is missing (json.fail-on-missing-field is set)"
    return None
