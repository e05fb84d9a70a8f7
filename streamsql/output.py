"""Showing results to people: tables for bounded results, one line per row for streams."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from streamsql.types import sql_type_name

OPS = {0: "+I", 1: "-U", 2: "+U", 3: "-D"}
MAX_ROWS = 1000


def _text(column: pa.Array) -> list[str]:
    """Each value as text (NULL for nulls), vectorized through Arrow's casts."""
    t = column.type
    if pa.types.is_timestamp(t):
        column = pc.strftime(column, format="%Y-%m-%d %H:%M:%S.%f")
        column = pc.utf8_slice_codeunits(column, 0, 23)
    elif pa.types.is_nested(t):
        return ["NULL" if v is None else str(v) for v in column.to_pylist()]
    else:
        column = column.cast(pa.string())
    return pc.fill_null(column, "NULL").to_pylist()


def print_table(console: Console, table: pa.Table, max_rows: int = MAX_ROWS) -> None:
    """A result table with its types, row count and (when cut) a note of what was left."""
    view = Table(show_header=True, header_style="bold")
    for field in table.schema:
        view.add_column(f"{field.name}\n{sql_type_name(field.type)}")
    shown = table.slice(0, max_rows)
    columns = [_text(shown.column(i).combine_chunks()) for i in range(shown.num_columns)]
    for row in zip(*columns, strict=True):
        view.add_row(*row)
    console.print(view)
    more = f" (showing {max_rows})" if table.num_rows > max_rows else ""
    console.print(f"{table.num_rows} row(s){more}", highlight=False)


def row_lines(batch: pa.RecordBatch) -> list[str]:
    """``+I[1, foo, 2020-01-01 00:00:05.000]`` per row, as a changelog prints."""
    names = batch.schema.names
    ops = None
    if "_op" in names:
        ops = batch.column(names.index("_op")).to_pylist()
        batch = batch.drop_columns(["_op"])
    columns = [_text(batch.column(i)) for i in range(batch.num_columns)]
    lines = []
    for i, row in enumerate(zip(*columns, strict=True)):
        kind = OPS.get(ops[i], "+I") if ops else "+I"
        lines.append(f"{kind}[{', '.join(row)}]")
    return lines
