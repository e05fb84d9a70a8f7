"""Showing results to people: tables for bounded results, one line per row for streams."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamsql.runtime.metrics import Figures
from streamsql.runtime.timeutil import format_ms
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


def result_view(table: pa.Table, max_rows: int = MAX_ROWS) -> Table:
    """A rich table of the first ``max_rows`` rows, with each column's name and type."""
    view = Table(show_header=True, header_style="bold")
    for field in table.schema:
        view.add_column(f"{field.name}\n{sql_type_name(field.type)}")
    shown = table.slice(0, max_rows)
    columns = [_text(shown.column(i).combine_chunks()) for i in range(shown.num_columns)]
    for row in zip(*columns, strict=True):
        view.add_row(*(Text(cell) for cell in row))
    return view


def row_count(n: int, max_rows: int, seconds: float | None = None) -> str:
    """``3 rows``, ``1 row``, ``12,000 rows (showing 1000)``, with ``in 0.12 s``."""
    text = f"{n:,} row{'' if n == 1 else 's'}"
    if seconds is not None:
        text += f" in {seconds:.2f} s"
    if n > max_rows:
        text += f" (showing {max_rows})"
    return text


def print_table(
    console: Console, table: pa.Table, max_rows: int = MAX_ROWS, seconds: float | None = None
) -> None:
    """A result table with its types, row count (and time) and, when cut, how many show."""
    console.print(result_view(table, max_rows))
    console.print(row_count(table.num_rows, max_rows, seconds), highlight=False)


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


def print_rows(console: Console, batch: pa.RecordBatch) -> None:
    """A batch of a continuous result as changelog lines, one per row."""
    for line in row_lines(batch):
        console.print(line, markup=False, highlight=False)


# -- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a metrics table: its heading and how a row of figures reads in it."""

    heading: str
    cell: Callable[[Figures], str]
    #: Cells that count as empty: a column empty in every row is left out of a table.
    empty: tuple[str, ...] = ()


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _time(ms: int | None) -> str:
    """A watermark to the millisecond (``format_ms`` shows microseconds)."""
    if ms is None:
        return "-"
    text = format_ms(ms)
    dot = text.find(".")
    return text[: dot + 4] if dot >= 0 else text


FIGURE_COLUMNS = (
    Column("rows in", lambda f: _count(f.rows_in)),
    Column("rows out", lambda f: _count(f.rows_out)),
    Column("in/s", lambda f: f"{f.rows_in_per_s:,.0f}"),
    Column("out/s", lambda f: f"{f.rows_out_per_s:,.0f}"),
    Column("util", lambda f: _share(f.utilization)),
    Column("backpr", lambda f: _share(f.backpressured)),
    Column("headroom", lambda f: _share(f.headroom)),
    Column("fill", lambda f: _share(f.channel_fill), empty=("-",)),
    Column("watermark", lambda f: _time(f.watermark)),
    Column("lag ms", lambda f: _count(f.watermark_lag_ms)),
    Column("state", lambda f: _count(f.state_rows), empty=("-",)),
    Column("peak", lambda f: _count(f.state_rows_peak), empty=("-",)),
    Column("late", lambda f: _count(f.late_rows), empty=("0",)),
    Column("dropped", lambda f: _count(f.events_dropped), empty=("0",)),
)


def figure_table(
    labels: Sequence[Sequence[str]], figures: Sequence[Figures], label_headings: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """Headings and text rows: each row's labels, then :data:`FIGURE_COLUMNS` but those
    empty in every row.
    """
    cells = [[c.cell(f) for c in FIGURE_COLUMNS] for f in figures]
    keep = [
        i
        for i, c in enumerate(FIGURE_COLUMNS)
        if not c.empty or any(row[i] not in c.empty for row in cells)
    ]
    headings = [*label_headings, *(FIGURE_COLUMNS[i].heading for i in keep)]
    rows = [[*lab, *(row[i] for i in keep)] for lab, row in zip(labels, cells, strict=True)]
    return headings, rows


def text_table(
    headings: Sequence[str], rows: Sequence[Sequence[str]], labels: int = 1
) -> list[str]:
    """Aligned plain-text lines: the first ``labels`` columns to the left, figures to the
    right, two spaces apart.

    >>> text_table(["op", "rows"], [["Scan", "1,000"], ["Sink", "7"]])
    ['op     rows', 'Scan  1,000', 'Sink      7']
    """
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.ljust(w) if i < labels else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(headings), *(line(r) for r in rows)]


def print_figures(
    console: Console,
    headings: Sequence[str],
    rows: Sequence[Sequence[str]],
    labels: int = 1,
    plain: bool = False,
) -> None:
    """A metrics table: rich on a terminal wide enough for it, else aligned text lines
    (also when ``plain``), which a narrow terminal wraps without cutting figures short.
    """
    view = Table(show_header=True, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, heading in enumerate(headings):
        view.add_column(heading, justify="left" if i < labels else "right", no_wrap=True)
    for row in rows:
        view.add_row(*(Text(cell) for cell in row))
    wide = console.options.update_width(100_000)  # the table's natural width, unclamped
    if not plain and console.measure(view, options=wide).maximum <= console.width:
        console.print(view)
        return
    for line in text_table(headings, rows, labels):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
