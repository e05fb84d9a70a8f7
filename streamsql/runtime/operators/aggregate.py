"""Unbounded aggregation: every change of the input updates its group and is emitted as a
changelog (+I for a new group, -U/+U for a changed one, -D for a group that empties).

Per batch: the batch's rows are reduced to one delta per group with pyarrow (a retraction
counts negatively); the groups' accumulators are read from the DuckDB state table, combined
with the deltas, written back with ``INSERT OR REPLACE``, and the groups whose result changed
are emitted. MIN/MAX over a retracting input and DISTINCT aggregates keep a multiset of values
per group (value, multiplicity) in a state table of their own, so that retracting the current
extreme or the last copy of a value is exact.

A checkpoint keeps the accumulators and the value multisets (keyed by the group keys as the
input has them, see GroupKeys.portable), rows still held back for a mini-batch (keyed by
the input's key columns), and when the TTL sweep is next due. Each group's last update
time (``__t``, the TTL clock) is a column of its accumulators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.changelog import DELETE, INSERT, OP, OP_TYPE, UPDATE_AFTER, UPDATE_BEFORE, signs
from streamsql.plan.nodes import AggCall, Aggregate
from streamsql.runtime.operators.accumulate import average, sum_input
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.group_keys import GroupKeys
from streamsql.runtime.scalars import ZERO
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.state.store import quote

_ONLY_VALID = pc.CountOptions(mode="only_valid")
#: How often (seconds, of the job's processing time) expired keys are looked for when a
#: state TTL is set.
TTL_SWEEP_S = 1.0
#: Snapshot table of the rows held back for a mini-batch.
HELD = "held"


class AggregateOperator(Operator):
    def __init__(self, node: Aggregate) -> None:
        self.node = node
        self.keys = GroupKeys(node.keys, node.input.schema)
        self.aggs = node.aggs
        self.multiset = {i for i, a in enumerate(node.aggs) if _multiset(a, node.retracting)}
        self.schema = node.schema
        self.retracting = node.retracting

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        prefix = f"{ctx.state_prefix}_agg"
        acc = self.keys.state_schema()
        acc = acc.append(pa.field("__n", pa.int64()))
        for i, a in enumerate(self.aggs):
            for name, t in _acc_fields(i, a, self.node.input.schema):
                acc = acc.append(pa.field(name, t))
        acc = acc.append(pa.field("__t", pa.int64()))
        self.acc_schema = acc
        self.acc = ctx.state.create(f"{prefix}_accumulators_i{ctx.instance}", acc)
        self.values: dict[int, str] = {}
        self.value_schemas: dict[int, pa.Schema] = {}
        for i in sorted(self.multiset):
            vtype = _value_type(self.aggs[i], self.node.input.schema)
            vals = self.keys.state_schema().append(pa.field("v", vtype))
            vals = vals.append(pa.field("cnt", pa.int64()))
            self.value_schemas[i] = vals
            self.values[i] = ctx.state.create(f"{prefix}_values{i}_i{ctx.instance}", vals)
        ttl = ctx.settings["table.exec.state.ttl"] if ctx.settings is not None else 0
        self.ttl_ms = int(ttl or 0)
        self.next_sweep = 0  # processing time (ms) of the next sweep for expired groups
        settings = ctx.settings
        enabled = settings is None or settings["table.exec.mini-batch.enabled"]
        self.mini_batch = settings["table.exec.mini-batch.size"] if enabled and settings else 1
        self.held: list[pa.RecordBatch] = []
        self.held_rows = 0

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        """Hold the batch in the mini-batch; apply the mini-batch once it is big enough."""
        self.held.append(batch)
        self.held_rows += batch.num_rows
        return self.flush() if self.held_rows >= self.mini_batch else ()

    def flush(self) -> Iterable[pa.RecordBatch]:
        if not self.held:
            return ()
        batch = pa.Table.from_batches(self.held).combine_chunks().to_batches()
        self.held, self.held_rows = [], 0
        return self._apply(batch[0]) if batch else ()

    def close(self) -> Iterable[pa.RecordBatch]:
        return self.flush()

    def _apply(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        """Bring the state up to date with ``batch`` and return the changes of results."""
        if self.ttl_ms:
            self._expire()
        delta = self._delta(batch)
        if delta.num_rows == 0:
            return ()
        old = self._load(delta)
        stats = {i: self._update_values(i, batch) for i in self.multiset}
        new = self._combine(old, delta, stats)
        self._store(old, new)
        return self._emit(old, new)

    def describe_state(self) -> dict[str, int]:
        return {"aggregate_groups": self.ctx.state.row_count(self.acc)}

    # -- checkpoints -------------------------------------------------------------------------

    def _state_tables(self) -> dict[str, tuple[str, pa.Schema]]:
        """Snapshot table name -> (DuckDB table, its schema)."""
        tables = {"accumulators": (self.acc, self.acc_schema)}
        for i, table in self.values.items():
            tables[f"values{i}"] = (table, self.value_schemas[i])
        return tables

    def snapshot(self) -> OperatorSnapshot:
        """Every state table with its keys in portable form, the held rows (the executor
        flushes before a barrier, so normally none: kept so that nothing is lost if not),
        and the next sweep's time. A global aggregate runs one instance: its tables have no
        key columns and are not keyed.
        """
        snap = OperatorSnapshot(values={"next_sweep_ms": self.next_sweep})
        for name, (table, schema) in self._state_tables().items():
            rows = self.ctx.state.query(f"SELECT * FROM {quote(table)}")
            snap.tables[name] = self.keys.portable(rows.cast(schema))
            if self.keys.keys:
                snap.keys[name] = tuple(self.keys.portable_names)
        if self.held:
            snap.tables[HELD] = pa.Table.from_batches(self.held)
        if self.keys.keys:  # declared even without held rows: every instance keys alike
            snap.keys[HELD] = self.keys.keys
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        for name, (table, schema) in self._state_tables().items():
            rows = snapshot.table(name)
            if rows is not None and rows.num_rows:
                self.ctx.state.append(table, self.keys.from_portable(rows, schema))
        held = snapshot.table(HELD)
        if held is not None and held.num_rows:
            self.held = held.combine_chunks().to_batches()
            self.held_rows = held.num_rows
        # Rescaled: a sweep is due when the first of the old instances' was.
        sweeps = [v["next_sweep_ms"] for v in values if "next_sweep_ms" in v]
        self.next_sweep = min(sweeps, default=0)

    # -- per batch ---------------------------------------------------------------------------

    def _signs(self, batch: pa.RecordBatch) -> pa.Array | None:
        """+1/-1 per row for an updating input; None when every row is an insert."""
        if OP not in batch.schema.names:
            return None
        return signs(batch.column(OP))

    def _delta(self, batch: pa.RecordBatch) -> pa.Table:
        """One row per group touched by the batch: key columns and signed deltas.

        Rows are grouped by the key columns as they are (NULL keys form a group of their
        own); the NULL-free key form of state is derived from the few grouped rows.
        """
        sign = self._signs(batch)
        keys = [f"__key{i}" for i in range(len(self.keys.keys))]
        cols = {k: batch.column(src) for k, src in zip(keys, self.keys.keys, strict=True)}
        if sign is None:  # inserts only: counts and sums need no signs
            specs: list[tuple] = [([], "count_all")]
            outputs = ["__n"]
        else:
            cols["__n"] = sign
            specs, outputs = [("__n", "sum")], ["__n"]
        for i, a in enumerate(self.aggs):
            if i in self.multiset:
                continue
            for name, fn, values, opts in _delta_inputs(i, a, batch, sign):
                outputs.append(name)
                if fn == "count_all":
                    specs.append(([], fn))
                    continue
                cols[name] = values
                specs.append((name, fn, opts) if opts else (name, fn))
        table = pa.table(cols) if cols else pa.table({"__rows": pa.nulls(batch.num_rows)})
        grouped = table.group_by(keys, use_threads=False).aggregate(specs)
        out = self.keys.state_arrays(
            pa.table({src: grouped.column(k) for k, src in zip(keys, self.keys.keys, strict=True)})
            if keys
            else pa.table({"__rows": pa.nulls(grouped.num_rows)})
        )
        # The aggregates come in the order of `specs`, beside the keys (before or after them
        # depending on pyarrow's version).
        results = [
            c for n, c in zip(grouped.column_names, grouped.columns, strict=True) if n not in keys
        ]
        for name, values in zip(outputs, results, strict=True):
            out[name] = values
        return pa.table(out)

    def _load(self, delta: pa.Table) -> pa.Table:
        """The stored accumulators of the delta's groups, row-aligned with ``delta``
        (all NULL for a group seen for the first time).
        """
        pk = self.keys.state_columns
        probe = pa.table({**{k: delta.column(k) for k in pk}, "__pos": np.arange(delta.num_rows)})
        on = " AND ".join(f"a.{quote(k)} = d.{quote(k)}" for k in pk)
        rest = [c for c in self.acc_schema.names if c not in pk]
        select = ", ".join(f"a.{quote(c)}" for c in rest)
        found = self.ctx.state.query(
            f"SELECT d.__pos, {select} FROM __delta d JOIN {quote(self.acc)} a ON {on}",
            __delta=probe,
        )
        aligned = {k: delta.column(k) for k in pk}
        positions = found.column("__pos").to_numpy(zero_copy_only=False)
        index = np.full(delta.num_rows, -1, dtype=np.int64)
        index[positions] = np.arange(len(positions))
        take = pa.array(index, mask=index < 0)
        for c in rest:
            field = self.acc_schema.field(c)
            aligned[c] = found.column(c).combine_chunks().cast(field.type).take(take)
        return pa.table(aligned)

    def _update_values(self, i: int, batch: pa.RecordBatch) -> pa.Table:
        """Apply the batch to aggregate ``i``'s value multiset and return, per touched
        group, the statistics the aggregate needs (count, sum, min, max of live values).
        """
        a = self.aggs[i]
        sign = self._signs(batch)
        values = batch.column(a.arg)
        if a.func in ("SUM", "AVG"):
            values = sum_input(values)
        keep = pc.is_valid(values)
        if a.filter:
            keep = pc.and_(keep, pc.fill_null(batch.column(a.filter), False))
        cols = self.keys.state_arrays(batch)
        cols["v"] = values
        cols["cnt"] = pa.array(np.ones(batch.num_rows, np.int64)) if sign is None else sign
        rows = pa.table(cols).filter(keep)
        pk = self.keys.state_columns
        table = quote(self.values[i])
        if rows.num_rows:
            delta = rows.group_by([*pk, "v"], use_threads=False).aggregate([("cnt", "sum")])
            delta = delta.rename_columns([c.removesuffix("_sum") for c in delta.column_names])
            # Replace the touched (group, value) rows by their new counts. (DuckDB's UPDATE of
            # a scattered subset of rows is far slower than DELETE + INSERT.)
            on = " AND ".join(f"t.{quote(k)} = d.{quote(k)}" for k in [*pk, "v"])
            picked = ", ".join(f"d.{quote(c)}" for c in [*pk, "v"])
            merged = self.ctx.state.query(
                f"SELECT {picked}, d.cnt + coalesce(t.cnt, 0) AS cnt FROM __vd d "
                f"LEFT JOIN {table} t ON {on}",
                __vd=delta,
            )
            same = " AND ".join(f"{table}.{quote(k)} = d.{quote(k)}" for k in [*pk, "v"])
            self.ctx.state.execute_with(
                f"DELETE FROM {table} USING __vd d WHERE {same}", __vd=delta
            )
            live = merged.filter(pc.greater(merged.column("cnt"), ZERO))
            self.ctx.state.append(self.values[i], live)
        touched = pa.table({k: cols[k] for k in pk}).group_by(pk, use_threads=False).aggregate([])
        on = " AND ".join(f"t.{quote(k)} = v.{quote(k)}" for k in pk)
        keys_sql = ", ".join(f"t.{quote(k)}" for k in pk)
        wanted = {"COUNT": "count(v.v) AS c", "MIN": "min(v.v) AS lo", "MAX": "max(v.v) AS hi"}
        measures = wanted.get(a.func, "count(v.v) AS c, sum(v.v) AS s")
        return self.ctx.state.query(
            f"SELECT {keys_sql}, {measures} FROM __touched t LEFT JOIN {table} v ON {on} "
            f"GROUP BY {keys_sql}",
            __touched=touched,
        )

    def _combine(self, old: pa.Table, delta: pa.Table, stats: dict[int, pa.Table]) -> pa.Table:
        """New accumulators: old + delta (NULL old counts as empty)."""
        pk = self.keys.state_columns
        out = {k: delta.column(k) for k in pk}
        out["__n"] = _plus(old.column("__n"), delta.column("__n"))
        aligned_stats = {i: self._align(delta, s) for i, s in stats.items()}
        for i, a in enumerate(self.aggs):
            name = f"a{i}"
            if i in self.multiset:
                s = aligned_stats[i]
                out.update(_from_values(i, a, s))
                continue
            match a.func:
                case "COUNT":
                    out[name] = _plus(old.column(name), delta.column(name))
                case "SUM" | "AVG":
                    n = _plus(old.column(f"{name}_n"), delta.column(f"{name}_n"))
                    total = _plus(old.column(name), delta.column(name))
                    out[name] = pc.if_else(pc.equal(n, ZERO), pa.nulls(len(n), total.type), total)
                    out[f"{name}_n"] = n
                case "MIN":
                    out[name] = pc.min_element_wise(
                        old.column(name), delta.column(name), skip_nulls=True
                    )
                case "MAX":
                    out[name] = pc.max_element_wise(
                        old.column(name), delta.column(name), skip_nulls=True
                    )
        out["__t"] = pa.array(np.full(delta.num_rows, self.ctx.now_ms(), dtype=np.int64))
        arrays = [
            _as_array(out[f.name]).cast(f.type)
            if _as_array(out[f.name]).type != f.type
            else _as_array(out[f.name])
            for f in self.acc_schema
        ]
        return pa.Table.from_arrays(arrays, schema=self.acc_schema)

    def _align(self, delta: pa.Table, stats: pa.Table) -> pa.Table:
        """``stats`` rows in the order of ``delta``'s groups (both hold every group once)."""
        pk = self.keys.state_columns
        left = pa.table({**{k: delta.column(k) for k in pk}, "__pos": np.arange(delta.num_rows)})
        joined = left.join(stats, keys=pk, join_type="left outer").sort_by("__pos")
        return joined

    def _store(self, old: pa.Table, new: pa.Table) -> None:
        """Write the new accumulators: the touched groups' stored rows are deleted and the
        live ones inserted again (DuckDB's UPDATE of a scattered subset of rows is far slower
        than DELETE + INSERT); an emptied group's values go too.
        """
        pk = self.keys.state_columns
        acc = quote(self.acc)
        stored = pc.is_valid(old.column("__n"))
        live = pc.greater(new.column("__n"), ZERO)
        if pc.any(stored).as_py():
            same = " AND ".join(f"{acc}.{quote(k)} = n.{quote(k)}" for k in pk)
            keys = new.filter(stored).select(pk)
            self.ctx.state.execute_with(f"DELETE FROM {acc} USING __n n WHERE {same}", __n=keys)
        self.ctx.state.append(self.acc, new.filter(live))
        gone = new.filter(pc.invert(live)).select(pk)
        for table in self.values.values() if gone.num_rows else ():
            von = " AND ".join(f"{quote(table)}.{quote(k)} = n.{quote(k)}" for k in pk)
            self.ctx.state.execute_with(
                f"DELETE FROM {quote(table)} USING __n n WHERE {von}", __n=gone
            )

    def _emit(self, old: pa.Table, new: pa.Table) -> list[pa.RecordBatch]:
        """-U/+U for changed groups, +I for new ones, -D for emptied ones; a group whose
        result did not change emits nothing.
        """
        had = pc.fill_null(pc.greater(old.column("__n"), ZERO), False)
        has = pc.greater(new.column("__n"), ZERO)
        before = self._results(old)
        after = self._results(new)
        same = _rows_equal(before, after)
        changed = pc.or_(pc.not_equal(had, has), pc.invert(same))
        emit_before = pc.and_(had, changed).to_numpy(zero_copy_only=False)
        emit_after = pc.and_(has, changed).to_numpy(zero_copy_only=False)
        if not emit_before.any() and not emit_after.any():
            return []
        had_np = had.to_numpy(zero_copy_only=False)
        has_np = has.to_numpy(zero_copy_only=False)
        before_op = np.where(has_np, UPDATE_BEFORE, DELETE).astype(np.int8)
        after_op = np.where(had_np, UPDATE_AFTER, INSERT).astype(np.int8)
        pos = np.arange(old.num_rows)
        rows_b, rows_a = pos[emit_before], pos[emit_after]
        # Each group's -U comes right before its +U.
        order = np.argsort(np.concatenate([rows_b * 2, rows_a * 2 + 1]), kind="stable")
        both = pa.concat_tables([before.take(pa.array(rows_b)), after.take(pa.array(rows_a))])
        ops = np.concatenate([before_op[rows_b], after_op[rows_a]])
        out = both.take(pa.array(order)).append_column(OP, pa.array(ops[order], OP_TYPE))
        return out.to_batches()

    def _results(self, acc: pa.Table) -> pa.Table:
        """The output rows (group keys and aggregate values) an accumulator table stands for."""
        arrays = self.keys.restore(acc)
        for i, a in enumerate(self.aggs):
            arrays.append(_result(i, a, acc))
        fields = list(self.schema)
        out = [
            _as_array(v).cast(f.type) if _as_array(v).type != f.type else _as_array(v)
            for v, f in zip(arrays, fields, strict=True)
        ]
        return pa.Table.from_arrays(out, schema=self.schema)

    def _expire(self) -> None:
        """Drop the groups not updated for 'table.exec.state.ttl'. Times are the job's
        processing time in epoch ms (``ctx.now_ms``), so the ``__t`` columns and the sweep
        time in a checkpoint mean the same in the process that restores it.
        """
        now = self.ctx.now_ms()
        if now < self.next_sweep:
            return
        self.next_sweep = now + int(TTL_SWEEP_S * 1000)
        cutoff = now - self.ttl_ms
        acc = quote(self.acc)
        expired = self.ctx.state.execute(f"DELETE FROM {acc} WHERE __t < {cutoff} RETURNING 1")
        if expired:
            self.ctx.metrics.add("state_expired_keys", len(expired))
            pk = self.keys.state_columns
            for table in self.values.values():
                on = " AND ".join(f"a.{quote(k)} = {quote(table)}.{quote(k)}" for k in pk)
                self.ctx.state.execute(
                    f"DELETE FROM {quote(table)} WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {acc} a WHERE {on})"
                )


def _multiset(a: AggCall, retracting: bool) -> bool:
    return a.distinct or (a.func in ("MIN", "MAX") and retracting)


def _value_type(a: AggCall, schema: pa.Schema) -> pa.DataType:
    t = schema.field(a.arg).type
    if a.func in ("SUM", "AVG"):
        return sum_input(pa.array([], t)).type
    return t


def _acc_fields(i: int, a: AggCall, schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    name = f"a{i}"
    arg = schema.field(a.arg).type if a.arg else None
    if a.func == "COUNT":
        return [(name, pa.int64())]
    if a.func in ("SUM", "AVG"):
        assert arg is not None
        return [(name, _value_type(a, schema)), (f"{name}_n", pa.int64())]
    assert arg is not None
    return [(name, arg)]


def _delta_inputs(i: int, a: AggCall, batch: pa.RecordBatch, sign: pa.Array | None):
    """(state column, pyarrow aggregate, values, options) whose per-group results are the
    delta. Over inserts only, counting is pyarrow's count; over a changelog every row
    counts +1 or -1 and sums add signed values.
    """
    name = f"a{i}"
    mask = pc.fill_null(batch.column(a.filter), False) if a.filter else None

    def masked(values: pa.Array) -> pa.Array:
        if mask is None:
            return values
        return pc.if_else(mask, values, pa.nulls(len(values), values.type))

    def counted(valid: pa.Array | None) -> tuple[str, str, pa.Array, object]:
        """COUNT of rows where ``valid`` (all rows when None) and the FILTER hold."""
        if sign is None:
            present = valid if valid is not None else pa.array(np.ones(batch.num_rows, bool))
            return (name, "count", masked(present), _ONLY_VALID)
        unit = sign if valid is None else pc.if_else(valid, sign, pa.scalar(0, pa.int64()))
        return (name, "sum", pc.fill_null(masked(unit), 0), None)

    if a.func == "COUNT":
        if a.arg is None and mask is None and sign is None:
            return [(name, "count_all", None, None)]
        valid = None if a.arg is None else pc.is_valid(batch.column(a.arg))
        if sign is None and valid is not None:
            return [(name, "count", masked(batch.column(a.arg)), _ONLY_VALID)]
        return [counted(valid)]
    values = masked(batch.column(a.arg))
    if a.func in ("SUM", "AVG"):
        wide = sum_input(values)
        signed = wide if sign is None else pc.if_else(pc.less(sign, ZERO), pc.negate(wide), wide)
        if sign is None:
            count = (f"{name}_n", "count", values, _ONLY_VALID)
        else:
            unit = pc.if_else(pc.is_valid(values), sign, pa.scalar(0, pa.int64()))
            count = (f"{name}_n", "sum", unit, None)
        return [(name, "sum", signed, None), count]
    return [(name, a.func.lower(), values, None)]


def _from_values(i: int, a: AggCall, stats: pa.Table) -> dict[str, pa.Array]:
    """Accumulator columns of a multiset aggregate from its live-value statistics."""
    name = f"a{i}"
    match a.func:
        case "MIN":
            return {name: stats.column("lo")}
        case "MAX":
            return {name: stats.column("hi")}
    count = pc.fill_null(stats.column("c"), 0).cast(pa.int64())
    if a.func == "COUNT":
        return {name: count}
    return {name: stats.column("s"), f"{name}_n": count}


def _result(i: int, a: AggCall, acc: pa.Table) -> pa.Array:
    name = f"a{i}"
    if a.func == "COUNT":
        return pc.fill_null(acc.column(name), 0)
    if a.func == "AVG":
        return average(_as_array(acc.column(name)), _as_array(acc.column(f"{name}_n")), a.type)
    return acc.column(name)


def _plus(old: pa.Array | pa.ChunkedArray, delta: pa.Array | pa.ChunkedArray) -> pa.Array:
    """old + delta where a missing old value counts as zero (and a missing delta too)."""
    old, delta = _as_array(old), _as_array(delta)
    if pa.types.is_null(old.type):
        old = old.cast(delta.type)
    zero = (
        pa.scalar(0, old.type) if not pa.types.is_decimal(old.type) else pa.scalar(0).cast(old.type)
    )
    return pc.add(pc.fill_null(old, zero), pc.fill_null(delta.cast(old.type), zero))


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _rows_equal(a: pa.Table, b: pa.Table) -> pa.Array:
    """Row-wise equality of two aligned tables, NULL equal to NULL."""
    result = None
    for x, y in zip(a.columns, b.columns, strict=True):
        x, y = _as_array(x), _as_array(y)
        both_null = pc.and_(pc.is_null(x), pc.is_null(y))
        eq = pc.or_(pc.fill_null(pc.equal(x, y), False), both_null)
        result = eq if result is None else pc.and_(result, eq)
    return result if result is not None else pa.array(np.ones(a.num_rows, dtype=bool))
