"""Format writers for the filesystem sink: csv and json lines as text, Parquet as row groups.

A writer owns one open file; ``size()`` is what the file will hold so far (for rolling) and
``close()`` finishes it. CSV output is what the csv reader reads back: no header, the same
delimiter and quote, TIMESTAMP as 'yyyy-MM-dd HH:mm:ss.SSS', BYTES as base64, ARRAY/ROW
elements joined by 'csv.array-element-delimiter', NULL as '' (or 'csv.null-literal').
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamsql import duck
from streamsql.connectors.formats.csv_reader import CsvOptions
from streamsql.connectors.formats.javatext import java_double, join, sql_time, sql_timestamp


class FileWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...
    def size(self) -> int: ...
    def close(self) -> None: ...


class TextWriter:
    """Writes each batch as the text ``encode`` makes of it."""

    def __init__(self, path: str, encode: Callable[[pa.RecordBatch], bytes]) -> None:
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.encode = encode

    def write(self, batch: pa.RecordBatch) -> None:
        self.file.write(self.encode(batch))

    def size(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()


class ParquetFileWriter:
    """Buffers batches into row groups of a sensible size (a batch may be a single row)."""

    ROW_GROUP_ROWS = 1 << 20
    ROW_GROUP_BYTES = 64 << 20

    def __init__(self, path: str, schema: pa.Schema, compression: str) -> None:
        self.path = path
        self.writer = pq.ParquetWriter(path, schema, compression=compression)
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = self.pending_bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.pending_bytes += batch.nbytes
        if self.pending_rows >= self.ROW_GROUP_ROWS or self.pending_bytes >= self.ROW_GROUP_BYTES:
            self._drain()

    def _drain(self) -> None:
        if self.pending:
            self.writer.write_table(
                pa.Table.from_batches(self.pending), row_group_size=self.pending_rows
            )
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def size(self) -> int:
        return os.path.getsize(self.path) + self.pending_bytes

    def close(self) -> None:
        self._drain()
        self.writer.close()


def to_lines(texts: pa.Array) -> bytes:
    """The strings of ``texts`` concatenated (each should end with a newline)."""
    whole = pa.ListArray.from_arrays(pa.array([0, len(texts)], pa.int32()), texts)
    return pc.binary_join(whole, "")[0].as_py().encode()


def encode_csv(batch: pa.RecordBatch, opts: CsvOptions, con: duck.Connection) -> bytes:
    """CSV lines for a batch, one field per column in the batch's order."""
    if batch.num_rows == 0:
        return b""
    fields = [_quoted(_csv_null(csv_text(col, opts, con), opts), opts) for col in batch.columns]
    body = pc.binary_join_element_wise(*fields, opts.delimiter)
    return to_lines(join(body, "\n"))


def csv_text(arr: pa.Array, opts: CsvOptions, con: duck.Connection) -> pa.Array:
    """One CSV field per value, before quoting; NULL stays NULL."""
    t = arr.type
    if pa.types.is_floating(t):
        return java_double(arr)
    if pa.types.is_timestamp(t):
        return sql_timestamp(arr)
    if pa.types.is_time(t):
        return sql_time(arr)
    if pa.types.is_binary(t):
        return base64(arr, con)
    if pa.types.is_list(t) or pa.types.is_struct(t):
        parts = arr.values if pa.types.is_list(t) else None
        if parts is not None:
            start, stop = arr.offsets[0].as_py(), arr.offsets[-1].as_py()
            items = pc.fill_null(csv_text(arr.values.slice(start, stop - start), opts, con), "")
            offsets = pc.subtract(arr.offsets, start).cast(pa.int32())
            lists = pa.ListArray.from_arrays(offsets, items, mask=arr.is_null())
            return pc.binary_join(lists, opts.array_delimiter)
        children = [pc.fill_null(csv_text(c, opts, con), "") for c in arr.flatten()]
        text = pc.binary_join_element_wise(*children, opts.array_delimiter)
        return pc.if_else(arr.is_null(), pa.scalar(None, pa.string()), text)
    return pc.cast(arr, pa.string())


def base64(arr: pa.Array, con: duck.Connection) -> pa.Array:
    """BYTES as base64 text, as Flink's csv and json formats write them."""
    table = duck.query_arrow(con, "SELECT to_base64(b) AS t FROM __b", __b=pa.table({"b": arr}))
    return table.column(0).combine_chunks().cast(pa.string())


def _csv_null(text: pa.Array, opts: CsvOptions) -> pa.Array:
    return pc.fill_null(text, opts.null_literal if opts.null_literal is not None else "")


def _quoted(text: pa.Array, opts: CsvOptions) -> pa.Array:
    """Quote the fields that need it (delimiter, quote, escape or a line break inside)."""
    if opts.quote is None:
        return text
    q = opts.quote
    specials = {opts.delimiter, q, "\n", "\r"} | ({opts.escape} if opts.escape else set())
    data = text.buffers()[2]
    if data is None:
        return text
    raw = np.frombuffer(data, dtype=np.uint8)
    # A byte scan rules out most columns at once; a non-ASCII delimiter is always checked.
    present = [ch for ch in sorted(specials) if ord(ch) >= 128 or (raw == ord(ch)).any()]
    if not present:
        return text  # the common case: nothing in this column needs quotes
    need = pc.match_substring(text, present[0])
    for ch in present[1:]:
        need = pc.or_(need, pc.match_substring(text, ch))
    inner = text
    if opts.escape:
        inner = pc.replace_substring(inner, opts.escape, opts.escape * 2)
    inner = join(q, pc.replace_substring(inner, q, q * 2), q)
    return pc.if_else(need, inner, text)


def encode_json(batch: pa.RecordBatch, iso: bool, con: duck.Connection) -> bytes:
    """One JSON object per row; TIMESTAMPs in the SQL or ISO-8601 form, BYTES as base64."""
    if batch.num_rows == 0:
        return b""
    columns = []
    for col in batch.columns:
        if pa.types.is_timestamp(col.type):
            col = sql_timestamp(col, "T" if iso else " ")
        elif pa.types.is_time(col.type):
            col = sql_time(col)
        columns.append(col)
    table = pa.Table.from_arrays(columns, names=batch.schema.names)
    items = []
    for f in table.schema:
        name = duck.quote(f.name)
        value = f"to_base64({name})" if pa.types.is_binary(f.type) else name
        items.append(f"{name} := {value}")
    sql = f"SELECT to_json(struct_pack({', '.join(items)}))::VARCHAR || chr(10) FROM __rows"
    lines = duck.query_arrow(con, sql, __rows=table).column(0).combine_chunks()
    return to_lines(lines.cast(pa.string()))
