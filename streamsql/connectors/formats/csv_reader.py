"""Read CSV files as Flink's csv format does: no header, every declared column by position.

A block of lines is split with numpy (line numbers, comments, empty lines), tokenized by
pyarrow's CSV parser as text, and converted to the declared types by pyarrow, or by one DuckDB
query for the columns pyarrow refuses; bad rows (wrong field count, unbalanced quotes, values
that do not convert) are located in the same vectorized pass and either fail the job with
file and line or are skipped and counted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from streamsql.connectors.formats.common import Chunk, Problems, ReadSpec, make_batch
from streamsql.connectors.formats.text_blocks import LineBlock, iter_line_blocks
from streamsql.connectors.formats.text_casts import (
    convert_texts,
    describe_bad,
    is_text,
    split_sql,
)
from streamsql.errors import ExecError


@dataclass(frozen=True)
class CsvOptions:
    """The csv.* options, parsed."""

    delimiter: str = ","
    quote: str | None = '"'
    escape: str | None = None
    allow_comments: bool = False
    null_literal: str | None = None
    array_delimiter: str = ";"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CsvOptions:
        disabled = options.get("csv.disable-quote-character", False)
        return cls(
            delimiter=options.get("csv.field-delimiter", ","),
            quote=None if disabled else options.get("csv.quote-character", '"'),
            escape=options.get("csv.escape-character"),
            allow_comments=options.get("csv.allow-comments", False),
            null_literal=options.get("csv.null-literal"),
            array_delimiter=options.get("csv.array-element-delimiter", ";"),
        )


def read_csv_chunks(path: str, spec: ReadSpec, start: Mapping[str, int]) -> Iterator[Chunk]:
    """Decoded chunks of a CSV file from ``start`` ({'offset', 'line'}) to its end."""
    opts = CsvOptions.from_options(spec.options)
    block_bytes = min(16 << 20, max(1 << 20, spec.batch_size * 128))
    blocks = iter_line_blocks(
        path,
        offset=start.get("offset", 0),
        first_line=start.get("line", 1),
        block_bytes=block_bytes,
    )
    for block in blocks:
        yield _decode(path, block, spec, opts)


def _decode(path: str, block: LineBlock, spec: ReadSpec, opts: CsvOptions) -> Chunk:
    end = {"offset": block.end_offset, "line": block.first_line + block.count}
    keep = block.ends > block.starts  # empty lines are skipped, as pyarrow does
    if opts.allow_comments:
        keep &= block.first_bytes() != ord("#")
    problems = Problems()
    strings, rows = _tokenize(path, block, keep, spec, opts, problems)
    if len(rows):
        columns, row_bad = _convert(strings, spec, opts, block.lines[rows], problems)
    else:
        columns, row_bad = [pa.array([], f.type) for f in spec.fields], None
    problems.settle(path, spec)
    if row_bad is not None:
        good = ~row_bad
        columns = [c.filter(pa.array(good)) for c in columns]
        rows = rows[good]
    batch = make_batch(columns, spec.out_schema, len(rows))
    return Chunk(batch, end, block.next_offsets[rows], block.lines[rows])


def _tokenize(
    path: str,
    block: LineBlock,
    keep: np.ndarray,
    spec: ReadSpec,
    opts: CsvOptions,
    problems: Problems,
) -> tuple[pa.Table, np.ndarray]:
    """The needed columns as text, and the index (in the block) of the line of every row."""
    for attempt in range(2):
        kept = np.flatnonzero(keep)
        invalid: list[tuple[int, int, int]] = []
        table = _parse(path, block, keep, spec, opts, invalid) if len(kept) else None
        numbers = [number for number, _, _ in invalid]
        if None in numbers:
            break  # pyarrow did not say which rows it refused
        rejected = np.array(numbers, dtype=np.int64) - 1
        parsed = np.delete(kept, rejected)
        if table is None or table.num_rows == len(parsed):
            problems.add(block.lines[kept[rejected]], functools.partial(_wrong_count, invalid))
            if table is None:
                table = pa.table({c: pa.array([], pa.string()) for c in _read_columns(spec)})
            return table, parsed
        if attempt == 0 and opts.quote is not None:
            # A quote left open swallowed the line breaks after it (line breaks inside quoted
            # values are not supported): drop lines with an odd number of quotes and re-parse.
            odd = _odd_quotes(block, opts.quote) & keep
            if odd.any():
                problems.add(block.lines[odd], lambda i: "unbalanced quote character")
                keep = keep & ~odd
                continue
        break
    first, last = int(block.lines[0]), int(block.lines[-1])
    raise ExecError(f"{path}, lines {first}-{last}: cannot split the CSV text into records")


def _wrong_count(invalid: list[tuple[int, int, int]], i: int) -> str:
    _, expected, actual = invalid[i]
    return f"expected {expected} fields, found {actual}"


def _parse(
    path: str, block: LineBlock, keep: np.ndarray, spec: ReadSpec, opts: CsvOptions, invalid: list
) -> pa.Table:
    """The kept lines of the block parsed as text columns; refused rows go to ``invalid``."""
    data = block.select(keep)

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    names = spec.schema.names
    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=max(1 << 20, len(data) + 1)
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=opts.delimiter,
                quote_char=opts.quote or False,
                escape_char=opts.escape or False,
                double_quote=True,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                include_columns=_read_columns(spec),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as e:
        first, last = int(block.lines[0]), int(block.lines[-1])
        raise ExecError(f"{path}, lines {first}-{last}: cannot read the CSV text: {e}") from None


def _read_columns(spec: ReadSpec) -> list[str]:
    # pyarrow reads every column for an empty include list; read one and ignore it.
    return list(spec.columns) or spec.schema.names[:1]


def _odd_quotes(block: LineBlock, quote: str) -> np.ndarray:
    positions = np.flatnonzero(block.data == ord(quote))
    counts = np.searchsorted(positions, block.ends) - np.searchsorted(positions, block.starts)
    return (counts % 2) == 1


def _convert(
    strings: pa.Table, spec: ReadSpec, opts: CsvOptions, lines: np.ndarray, problems: Problems
) -> tuple[list[pa.Array], np.ndarray | None]:
    """Typed columns, and the rows (if any) with a value that did not convert."""
    fields = spec.fields
    texts = [
        _nulled(strings.column(f.name).combine_chunks(), opts.null_literal, f.type) for f in fields
    ]

    def sql_for(x: str, t: pa.DataType) -> tuple[str, str]:
        return split_sql(x, t, opts.array_delimiter)

    columns, bad = convert_texts(spec.con, texts, fields, sql_for)
    if not bad:
        return columns, None
    rows, problem = describe_bad(bad, texts, fields)
    problems.add(lines[rows], lambda _: problem)
    return columns, rows


def _nulled(text: pa.Array, null_literal: str | None, t: pa.DataType) -> pa.Array:
    """NULL for the null literal, and for an empty field unless the column is a STRING."""
    nulls = [] if is_text(t) else [""]
    if null_literal is not None:
        nulls.append(null_literal)
    if not nulls:
        return text
    hit = pc.equal(text, nulls[0])
    for other in nulls[1:]:
        hit = pc.or_(hit, pc.equal(text, other))
    return pc.if_else(hit, pa.scalar(None, pa.string()), text)
