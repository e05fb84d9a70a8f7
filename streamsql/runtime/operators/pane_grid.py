"""HOP windows from pane partials on a dense (pane x key) grid: each window's aggregate is
the combination of ``size / slide`` consecutive grid rows, computed as that many shifted
array operations, with no copy of a pane per window and no hash grouping.

It applies when the key is one column and the panes' keys fill the grid well (most keys in
most panes, the usual case for a short HOP); otherwise the caller merges copies of the
panes with a group-by.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The grid may hold at most this many cells per pane partial row (else it is too sparse).
MAX_CELLS_PER_ROW = 4


def slide_panes(
    partials: pa.Table,
    key_cols: list[str],
    specs: list[tuple[str, str]],
    window: tuple[int, int, int, int],
) -> pa.Table | None:
    """The windows ending in ``[first, last]`` (``window`` = first, last, slide, size) from
    the pane partials covering them: columns ``we``, the key columns, and ``{col}_{fn}``
    per (column, sum | min | max) of ``specs``. None when the grid does not apply.
    """
    first, last, slide, size = window
    n = partials.num_rows
    if n == 0 or len(key_cols) > 1:
        return None
    if not all(fn in ("sum", "min", "max") and _numeric(partials, col) for col, fn in specs):
        return None
    span = size // slide  # panes per window
    n_windows = (last - first) // slide + 1
    n_panes = n_windows + span - 1
    pane = (_ints(partials, "we") - (first - size + slide)) // slide
    if key_cols:
        encoded = pc.dictionary_encode(partials.column(key_cols[0]), null_encoding="encode")
        encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
        ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        keys = encoded.dictionary
    else:
        ids, keys = np.zeros(n, np.int64), None
    n_keys = len(keys) if keys is not None else 1
    if n_panes * n_keys > MAX_CELLS_PER_ROW * n + 1024:
        return None
    cell = pane * n_keys + ids
    shape = (n_panes, n_keys)

    combined = {
        (col, fn): _combined(partials.column(col), cell, shape, span, n_windows, fn)
        for col, fn in specs
    }
    if ("__n", "sum") in combined:  # the row count: a window has rows where it is > 0
        covered = combined[("__n", "sum")][0] > 0
    else:
        present = np.zeros(n_panes * n_keys, bool)
        present[cell] = True
        covered = _slide(present.reshape(shape), span, n_windows, np.logical_or).reshape(-1)
    positions = np.flatnonzero(covered)
    window_index, key_index = np.divmod(positions, n_keys)

    out: dict[str, pa.Array] = {"we": pa.array(first + window_index * slide, pa.int64())}
    if keys is not None:
        out[key_cols[0]] = keys.take(pa.array(key_index))
    for (col, fn), (result, counted) in combined.items():
        mask = None if counted is None else counted[positions] == 0
        out[f"{col}_{fn}"] = pa.array(result[positions], mask=mask)
    return pa.table(out)


def _combined(
    column: pa.ChunkedArray, cell: np.ndarray, shape: tuple[int, int], span, n_windows, fn
) -> tuple[np.ndarray, np.ndarray | None]:
    """One partial column combined over each window's panes, flat over the windows' grid
    cells, with how many of those panes had a value (none: the result is NULL); None for
    a column without NULLs.
    """
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    data = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
    dtype = np.float64 if data.dtype.kind == "f" else np.int64
    data = data.astype(dtype, copy=False)
    if fn == "sum":
        start, combine = 0, np.add
    elif fn == "min":
        start, combine = _highest(dtype), np.minimum
    else:
        start, combine = _lowest(dtype), np.maximum
    has = None
    if values.null_count:
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        cell, data = cell[valid], data[valid]
        has = np.zeros(shape[0] * shape[1], np.int32)
        has[cell] = 1
    grid = np.full(shape[0] * shape[1], start, dtype)
    # A pane may hold several partial rows of one key (one per batch): .at combines them.
    combine.at(grid, cell, data)
    result = _slide(grid.reshape(shape), span, n_windows, combine).reshape(-1)
    if has is None:
        return result, None
    return result, _slide(has.reshape(shape), span, n_windows, np.add).reshape(-1)


def _slide(grid: np.ndarray, span: int, n_windows: int, combine) -> np.ndarray:
    """Row j of the result combines grid rows j .. j + span - 1."""
    acc = grid[:n_windows].copy()
    for shift in range(1, span):
        combine(acc, grid[shift : shift + n_windows], out=acc)
    return acc


def _numeric(table: pa.Table, col: str) -> bool:
    t = table.schema.field(col).type
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _ints(table: pa.Table, col: str) -> np.ndarray:
    return table.column(col).to_numpy().astype(np.int64)


def _highest(dtype) -> float | int:
    return np.inf if dtype == np.float64 else np.iinfo(np.int64).max


def _lowest(dtype) -> float | int:
    return -np.inf if dtype == np.float64 else np.iinfo(np.int64).min
