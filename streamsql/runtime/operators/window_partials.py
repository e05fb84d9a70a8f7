"""Partial aggregates of a batch per (window end, key), shared by the one-phase window
aggregate (which keeps them in state) and the local phase of a two-phase one (which sends
them to its global phase); how they merge and what they finish into.

Partial columns are named after the aggregate's position ``i``: ``p{i}`` (COUNT, SUM, MIN,
MAX), ``p{i}_s`` and ``p{i}_c`` (AVG's sum and count); ``__n`` counts the rows of the group.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.nodes import AggCall, WindowSpec
from streamsql.runtime.operators.accumulate import average, sum_input
from streamsql.runtime.operators.window_assign import assign_windows, tumble_starts
from streamsql.runtime.timeutil import to_ms

ONLY_VALID = pc.CountOptions(mode="only_valid")


def slice_ends(
    batch: pa.RecordBatch | pa.Table, spec: WindowSpec, assigns: bool
) -> tuple[pa.RecordBatch | pa.Table, np.ndarray | None, np.ndarray]:
    """The rows (repeated once per window when a CUMULATE aggregate assigns windows), the
    index of the given row each one is a copy of (None: no repetition), and the end of the
    slice each belongs to: its window, or for a HOP the aggregate assigns, its pane.
    """
    if not assigns:
        return batch, None, to_ms(col(batch, "window_end")).to_numpy(zero_copy_only=False)
    times = to_ms(col(batch, spec.time_col)).to_numpy(zero_copy_only=False)
    if spec.kind == "TUMBLE":  # one window per row: no repetition
        return batch, None, tumble_starts(times, spec) + spec.size_ms
    if spec.kind == "HOP":  # the pane (slide) a row falls in; windows are made of panes
        panes = WindowSpec("TUMBLE", spec.time_col, spec.slide_ms, 0, spec.offset_ms)
        return batch, None, tumble_starts(times, panes) + spec.slide_ms
    copies, _, ends = assign_windows(times, spec)
    return batch.take(pa.array(copies)), copies, ends


def partial_table(
    batch: pa.RecordBatch | pa.Table,
    base: dict[str, pa.Array],
    plain: list[tuple[int, AggCall]],
) -> pa.Table:
    """One row per group of ``base`` (the window end ``we`` and key columns): ``base``'s
    columns, ``__n`` and the partial columns of the (non-DISTINCT) aggregates ``plain``.
    """
    group = list(base)
    cols = dict(base)
    specs: list[tuple] = [([], "count_all")]
    outputs = [("__n", "count_all")]
    for i, a in plain:
        for suffix, fn, values in _partial_inputs(a, batch):
            name = f"p{i}{suffix}"
            if values is None:
                outputs.append((name, "count_all"))
                continue
            cols[name] = values
            specs.append((name, fn, ONLY_VALID) if fn == "count" else (name, fn))
            outputs.append((name, f"{name}_{fn}"))
    grouped = pa.table(cols).group_by(group, use_threads=False).aggregate(specs)
    arrays = [grouped.column(g) for g in group]
    arrays += [grouped.column(src) for _, src in outputs]
    return pa.table(arrays, names=group + [n for n, _ in outputs])


def partial_names(i: int, a: AggCall) -> list[str]:
    """The partial columns of aggregate ``i``, in the order of the plan's partial fields."""
    return [name for name, _ in merge_specs(i, a)]


def merge_specs(i: int, a: AggCall) -> list[tuple]:
    """(column, pyarrow aggregate) that merges each partial column of aggregate ``i``."""
    p = f"p{i}"
    match a.func:
        case "COUNT" | "SUM":
            return [(p, "sum")]
        case "AVG":
            return [(f"{p}_s", "sum"), (f"{p}_c", "sum")]
        case _:
            return [(p, a.func.lower())]


def final(i: int, a: AggCall, merged: pa.Table) -> pa.Array:
    """Aggregate ``i``'s result from the merged partials (or distinct values)."""
    if a.distinct:
        v = f"v{i}"
        if a.func == "COUNT":
            return pc.fill_null(col(merged, f"{v}_count"), 0)
        if a.func == "SUM":
            return col(merged, f"{v}_sum")
        return average(col(merged, f"{v}_sum"), col(merged, f"{v}_count"), a.type)
    p = f"p{i}"
    if a.func == "AVG":
        return average(col(merged, f"{p}_s_sum"), col(merged, f"{p}_c_sum"), a.type)
    if a.func == "COUNT":
        return pc.fill_null(col(merged, f"{p}_sum"), 0)
    return col(merged, f"{p}_{'sum' if a.func == 'SUM' else a.func.lower()}")


def col(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    values = batch.column(name)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _partial_inputs(a: AggCall, batch: pa.RecordBatch | pa.Table):
    """(suffix, pyarrow aggregate, input values) for each partial column of ``a``;
    values None means "the group's row count" (COUNT(*) without FILTER).
    """
    mask = pc.fill_null(col(batch, a.filter), False) if a.filter else None

    def masked(values: pa.Array) -> pa.Array:
        if mask is None:
            return values
        return pc.if_else(mask, values, pa.nulls(len(values), values.type))

    if a.func == "COUNT":
        if a.arg is None:
            if mask is None:
                return [("", "count_all", None)]
            return [("", "count", masked(pa.array(np.ones(len(mask), dtype=np.int8))))]
        return [("", "count", masked(col(batch, a.arg)))]
    values = masked(col(batch, a.arg))
    if a.func == "SUM":
        return [("", "sum", sum_input(values))]
    if a.func == "AVG":
        return [("_s", "sum", sum_input(values)), ("_c", "count", values)]
    return [("", a.func.lower(), values)]
