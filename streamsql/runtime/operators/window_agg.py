"""Window aggregation: partial aggregates per batch, merged and emitted at window close.

Per batch, rows of windows that already fired are dropped and counted as late; the rest
are pre-aggregated per (window, key) with pyarrow into a write buffer, which moves into the
operator's DuckDB state table once it holds FLUSH_ROWS rows and at every checkpoint
barrier. When the watermark passes a window's end, one DuckDB query merges that window's
partials from the table and the buffer; the rows are emitted once (append-only) and the
window's partials are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.nodes import AggCall, WindowAggregate
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK, from_ms, to_ms
from streamsql.state.store import quote

#: Buffered partial rows before they are written to DuckDB (amortises per-call cost).
FLUSH_ROWS = 262_144
_INT64_MAX = 2**63 - 1


class WindowAggOperator(Operator):
    def __init__(self, node: WindowAggregate) -> None:
        self.node = node
        self.keys = node.keys
        self.key_cols = [f"k{i}" for i in range(len(node.keys))]
        self.group = ["ws", "we", *self.key_cols]
        self.plain = [(i, a) for i, a in enumerate(node.aggs) if not a.distinct]
        self.distinct = [(i, a) for i, a in enumerate(node.aggs) if a.distinct]
        self.schema = node.schema
        self.pending: set[int] = set()
        self.buffer: list[pa.Table] = []
        self.distinct_buffer: dict[int, list[pa.Table]] = {i: [] for i, _ in self.distinct}
        self.buffered = 0
        self.partials_table = ""
        self.table_ends: set[int] = set()  # windows with partials in the DuckDB table
        self.distinct_tables: dict[int, str] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        empty = _empty(self.node.input.schema)
        self.partials_schema = self._partials(empty).schema
        suffix = f"_i{ctx.instance}"
        self.partials_table = ctx.state.create(
            f"{ctx.state_prefix}_window_agg{suffix}", self.partials_schema
        )
        self.distinct_schemas: dict[int, pa.Schema] = {}
        for i, a in self.distinct:
            schema = self._distinct_rows(empty, a).schema
            self.distinct_schemas[i] = schema
            self.distinct_tables[i] = ctx.state.create(
                f"{ctx.state_prefix}_window_agg_distinct{i}{suffix}", schema
            )

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        batch = self._drop_late(batch)
        if batch.num_rows == 0:
            return ()
        partial = self._partials(batch)
        self.buffer.append(partial)
        self.buffered += partial.num_rows
        for i, a in self.distinct:
            rows = self._distinct_rows(batch, a)
            self.distinct_buffer[i].append(rows)
            self.buffered += rows.num_rows
        self.pending.update(pc.unique(partial.column("we")).to_pylist())
        if self.buffered >= FLUSH_ROWS:
            self._flush()
        return ()

    def on_watermark(self, watermark: int) -> Iterable[pa.RecordBatch]:
        limit = min(watermark + 1, _INT64_MAX)  # a window fires once wm >= end - 1 ms
        if not self.pending or min(self.pending) > limit:
            return ()
        fired = {e for e in self.pending if e <= limit}
        from_table = bool(fired & self.table_ends)
        merged = self._merge(limit, from_table)
        self._keep_unfired(limit)
        if from_table:
            everything = fired >= self.table_ends
            where = "" if everything else f" WHERE we <= {limit}"
            for table in [self.partials_table, *self.distinct_tables.values()]:
                self.ctx.state.execute(f"DELETE FROM {quote(table)}{where}")
            self.table_ends -= fired
        self.pending -= fired
        return merged.to_batches() if merged.num_rows else ()

    def _keep_unfired(self, limit: int) -> None:
        """Drop the buffered partials of the windows that just fired."""

        def rest(chunks: list[pa.Table]) -> list[pa.Table]:
            kept = [c.filter(pc.greater(c.column("we"), limit)) for c in chunks]
            return [c for c in kept if c.num_rows]

        self.buffer = rest(self.buffer)
        for i, chunks in self.distinct_buffer.items():
            self.distinct_buffer[i] = rest(chunks)
        self.buffered = sum(c.num_rows for c in self.buffer) + sum(
            c.num_rows for chunks in self.distinct_buffer.values() for c in chunks
        )

    def on_barrier(self, epoch: int) -> None:
        self._flush()

    def describe_state(self) -> dict[str, int]:
        rows = self.buffered + self.ctx.state.row_count(self.partials_table)
        return {"window_agg_state_rows": rows, "open_windows": len(self.pending)}

    # -- per batch ---------------------------------------------------------------------------

    def _drop_late(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        wm = self.ctx.watermark
        if wm == MIN_WATERMARK or batch.num_rows == 0:
            return batch
        ends = to_ms(batch.column("window_end")).to_numpy(zero_copy_only=False)
        late = ends <= min(wm + 1, _INT64_MAX)
        n_late = int(late.sum())
        if n_late == 0:
            return batch
        self.ctx.metrics.late_rows_dropped += n_late
        return batch.filter(pa.array(~late))

    def _base(self, batch: pa.RecordBatch | pa.Table) -> dict[str, pa.Array]:
        cols = {
            "ws": to_ms(_col(batch, "window_start")),
            "we": to_ms(_col(batch, "window_end")),
        }
        for name, key in zip(self.key_cols, self.keys, strict=True):
            cols[name] = _col(batch, key)
        return cols

    def _partials(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        cols = self._base(batch)
        specs: list[tuple] = [([], "count_all")]
        outputs = [("__n", "count_all")]
        for i, a in self.plain:
            for suffix, fn, values in _partial_inputs(a, batch):
                name = f"p{i}{suffix}"
                if values is None:
                    outputs.append((name, "count_all"))
                    continue
                cols[name] = values
                opts = pc.CountOptions(mode="only_valid") if fn == "count" else None
                specs.append((name, fn, opts) if opts else (name, fn))
                outputs.append((name, f"{name}_{fn}"))
        table = pa.table(cols)
        grouped = table.group_by(self.group, use_threads=False).aggregate(specs)
        arrays = [grouped.column(g) for g in self.group]
        arrays += [grouped.column(src) for _, src in outputs]
        names = self.group + [n for n, _ in outputs]
        return pa.table(arrays, names=names)

    def _distinct_rows(self, batch: pa.RecordBatch | pa.Table, a: AggCall) -> pa.Table:
        cols = self._base(batch)
        values = _col(batch, a.arg)
        cols["v"] = _arg_for_sum(values, a) if a.func in ("SUM", "AVG") else values
        table = pa.table(cols)
        keep = pc.is_valid(table.column("v"))
        if a.filter:
            keep = pc.and_(keep, pc.fill_null(_col(batch, a.filter), False))
        table = table.filter(keep)
        return table.group_by([*self.group, "v"], use_threads=False).aggregate([])

    def _flush(self) -> None:
        """Move the write buffer into the DuckDB state tables."""
        if self.buffer:
            data = pa.concat_tables(self.buffer)
            self.ctx.state.append(self.partials_table, data)
            self.table_ends.update(pc.unique(data.column("we")).to_pylist())
            self.buffer.clear()
        for i, rows in self.distinct_buffer.items():
            if rows:
                self.ctx.state.append(self.distinct_tables[i], pa.concat_tables(rows))
                rows.clear()
        self.buffered = 0

    # -- at window close -----------------------------------------------------------------------

    def _merge(self, limit: int, from_table: bool) -> pa.Table:
        """Merge the partials of every window ending at or before ``limit``: those in the
        DuckDB state table (when ``from_table``) and those still in the write buffer.
        """
        inputs: dict[str, pa.Table] = {}

        def source(table: str, chunks: list[pa.Table], alias: str, schema: pa.Schema) -> str:
            parts = []
            if from_table:
                parts.append(f"SELECT * FROM {quote(table)} WHERE we <= {limit}")
            inputs[alias] = pa.concat_tables(chunks) if chunks else schema.empty_table()
            parts.append(f"SELECT * FROM {alias} WHERE we <= {limit}")
            return " UNION ALL ".join(parts)

        group = ", ".join(self.group)
        selects = [*self.group, "CAST(SUM(__n) AS BIGINT) AS __n"]
        for i, a in self.plain:
            selects += _merge_exprs(i, a)
        main = source(self.partials_table, self.buffer, "__buf", self.partials_schema)
        sql = f"SELECT {', '.join(selects)} FROM ({main}) GROUP BY {group}"
        joins = []
        for i, _a in self.distinct:
            alias = f"d{i}"
            rows = source(
                self.distinct_tables[i],
                self.distinct_buffer[i],
                f"__dbuf{i}",
                self.distinct_schemas[i],
            )
            sub = (
                f"SELECT {group}, COUNT(DISTINCT v) AS c, SUM(DISTINCT v) AS s "
                f"FROM ({rows}) GROUP BY {group}"
            )
            on = " AND ".join(f"m.{g} IS NOT DISTINCT FROM {alias}.{g}" for g in self.group)
            joins.append(f"LEFT JOIN ({sub}) {alias} ON {on}")
        outer = ["m.*"] + [f"d{i}.c AS dc{i}, d{i}.s AS ds{i}" for i, _ in self.distinct]
        full = f"SELECT {', '.join(outer)} FROM ({sql}) m {' '.join(joins)}"
        merged = self.ctx.state.query(full, **inputs)
        # A stable output order (by window, then key) costs less in Arrow than in SQL.
        order = [(g, "ascending") for g in ["we", "ws", *self.key_cols]]
        return self._output(merged.sort_by(order))

    def _output(self, merged: pa.Table) -> pa.Table:
        ends = merged.column("we").combine_chunks()
        arrays = [
            from_ms(merged.column("ws").combine_chunks()),
            from_ms(ends),
            from_ms(pc.subtract(ends, 1)),
        ]
        for name in self.key_cols:
            arrays.append(merged.column(name))
        for i, a in enumerate(self.node.aggs):
            arrays.append(_final(i, a, merged))
        fields = list(self.schema)
        out = [
            arr.cast(f.type) if arr.type != f.type else arr
            for arr, f in zip(arrays, fields, strict=True)
        ]
        return pa.Table.from_arrays([_combine(a) for a in out], schema=self.schema)


def _col(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    return _combine(batch.column(name))


def _combine(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def _arg_for_sum(values: pa.Array, a: AggCall) -> pa.Array:
    """Sums run in BIGINT, DOUBLE or DECIMAL(38, s) so that partial sums cannot overflow
    a narrower type.
    """
    t = values.type
    if pa.types.is_integer(t):
        return values.cast(pa.int64())
    if pa.types.is_decimal(t):
        return values.cast(pa.decimal128(38, t.scale))
    return values.cast(pa.float64())


def _partial_inputs(a: AggCall, batch: pa.RecordBatch | pa.Table):
    """(suffix, pyarrow aggregate, input values) for each partial column of ``a``;
    values None means "the group's row count" (COUNT(*) without FILTER).
    """
    mask = pc.fill_null(_col(batch, a.filter), False) if a.filter else None

    def masked(values: pa.Array) -> pa.Array:
        if mask is None:
            return values
        return pc.if_else(mask, values, pa.nulls(len(values), values.type))

    if a.func == "COUNT":
        if a.arg is None:
            if mask is None:
                return [("", "count_all", None)]
            return [("", "count", masked(pa.array(np.ones(len(mask), dtype=np.int8))))]
        return [("", "count", masked(_col(batch, a.arg)))]
    values = masked(_col(batch, a.arg))
    if a.func == "SUM":
        return [("", "sum", _arg_for_sum(values, a))]
    if a.func == "AVG":
        return [("_s", "sum", _arg_for_sum(values, a)), ("_c", "count", values)]
    return [("", a.func.lower(), values)]


def _merge_exprs(i: int, a: AggCall) -> list[str]:
    p = f"p{i}"
    match a.func:
        case "COUNT":
            return [f"CAST(SUM({p}) AS BIGINT) AS {p}"]
        case "SUM":
            cast = "BIGINT" if pa.types.is_integer(a.type) else None
            return [f"CAST(SUM({p}) AS {cast}) AS {p}" if cast else f"SUM({p}) AS {p}"]
        case "AVG":
            return [f"SUM({p}_s) AS {p}_s", f"CAST(SUM({p}_c) AS BIGINT) AS {p}_c"]
        case _:
            return [f"{a.func}({p}) AS {p}"]


def _final(i: int, a: AggCall, merged: pa.Table) -> pa.Array:
    if a.distinct:
        count = _combine(merged.column(f"dc{i}"))
        if a.func == "COUNT":
            return pc.fill_null(count, 0).cast(pa.int64())
        total = _combine(merged.column(f"ds{i}"))
        return total if a.func == "SUM" else _average(total, count, a.type)
    if a.func == "AVG":
        return _average(
            _combine(merged.column(f"p{i}_s")), _combine(merged.column(f"p{i}_c")), a.type
        )
    return _combine(merged.column(f"p{i}"))


def _average(total: pa.Array, count: pa.Array, out: pa.DataType) -> pa.Array:
    """SUM / COUNT in the result type: integer division truncates, as Flink's AVG does."""
    count = count.cast(pa.int64())
    safe = pc.if_else(pc.equal(count, 0), pa.scalar(None, pa.int64()), count)
    if pa.types.is_integer(out):
        return pc.divide(total.cast(pa.int64()), safe).cast(out)
    if pa.types.is_decimal(out):
        # Exact decimal division needs headroom: divide in DECIMAL256, round HALF_UP.
        digits = total.type.precision - total.type.scale + out.scale
        wide = total.cast(pa.decimal256(min(digits, 56), out.scale))
        quotient = pc.divide(wide, safe.cast(pa.decimal256(19, 0)))
        rounded = pc.round(quotient, ndigits=out.scale, round_mode="half_up")
        return rounded.cast(out, safe=False)
    return pc.divide(total.cast(pa.float64()), safe.cast(pa.float64()))


__all__ = ["MAX_WATERMARK", "WindowAggOperator"]
