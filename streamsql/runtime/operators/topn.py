"""Top-N and deduplication over an unbounded stream.

Per batch, the rows stored for the partitions the batch touches are read from the DuckDB
state table, the batch is applied to them (inserts join, retractions remove one matching
row), every touched partition is ranked again, and only the ranks whose row changed are
emitted: -U/+U for a rank that changes hands (with the rank in the output), or +I/-D for rows
entering and leaving the top (without it). Over an append-only input only the top ``N`` rows
of a partition are kept, since no row below them can ever rise; over an updating input every
live row is kept, because a retraction at the top lets the next one in.

A checkpoint keeps the stored rows, keyed by their partition key columns (see
StoredRows.portable); the arrival numbers are made anew on restore.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.plan.changelog import DELETE, INSERT, OP, OP_TYPE, UPDATE_AFTER, UPDATE_BEFORE, signs
from streamsql.plan.nodes import TopN
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.group_keys import GroupKeys
from streamsql.runtime.operators.ranking import SEQ, StoredRows, rank_within, row_numbers
from streamsql.runtime.scalars import ZERO
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.state.store import quote


class TopNOperator(Operator):
    def __init__(self, node: TopN) -> None:
        self.node = node
        schema = node.input.schema
        self.stored = StoredRows(node.partition_keys, schema)
        self.pk = self.stored.pk
        self.columns = self.stored.columns
        self.stored_schema = self.stored.schema
        self.limit = node.limit
        self.retracting = node.input.mode.updating
        # A retraction takes back a row equal to it in every column (matching on an upsert
        # key alone would let a -U take the +U that follows it in the same batch).
        self.match = GroupKeys(tuple(schema.names), schema) if self.retracting else None
        self.schema = node.schema

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        name = f"{ctx.state_prefix}_topn_rows_i{ctx.instance}"
        self.table = ctx.state.create(name, self.stored_schema)

    def describe_state(self) -> dict[str, int]:
        return {"topn_state_rows": self.ctx.state.row_count(self.table)}

    def snapshot(self) -> OperatorSnapshot:
        """The stored rows, keyed by the partition keys (a Top-N without them runs one
        instance: not keyed).
        """
        rows = self.ctx.state.query(f"SELECT * FROM {quote(self.table)}")
        snap = OperatorSnapshot({"rows": self.stored.portable(rows.cast(self.stored_schema))})
        if self.node.partition_keys:
            snap.keys["rows"] = tuple(self.node.partition_keys)
        return snap

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        rows = snapshot.table("rows")
        if rows is not None and rows.num_rows:
            self.ctx.state.append(self.table, self.stored.restored(rows))

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> Iterable[pa.RecordBatch]:
        incoming = self.stored.of(batch)
        sign = signs(batch.column(OP)) if OP in batch.schema.names else None
        touched = (
            pa.table({k: incoming.column(k) for k in self.pk})
            .group_by(self.pk, use_threads=False)
            .aggregate([])
        )
        stored = self._load(touched)
        old_top, old_ranks = self._top(stored)
        if sign is None:
            live = pa.concat_tables([stored, self._contenders(incoming, old_top, old_ranks)])
        else:
            adds = incoming.filter(pc.greater(sign, ZERO))
            removes = incoming.filter(pc.less(sign, ZERO))
            live = self._retract(pa.concat_tables([stored, adds]), removes)
        new_top, new_ranks = self._top(live)
        self._save(touched, new_top if not self.retracting else live)
        return self._changes(old_top, old_ranks, new_top, new_ranks)

    # -- pieces ----------------------------------------------------------------------------

    def _load(self, touched: pa.Table) -> pa.Table:
        on = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in self.pk)
        found = self.ctx.state.query(
            f"SELECT s.* FROM {quote(self.table)} s SEMI JOIN __touched t ON {on}",
            __touched=touched,
        )
        return found.cast(self.stored_schema) if found.schema != self.stored_schema else found

    def _top(self, rows: pa.Table) -> tuple[pa.Table, np.ndarray]:
        """The first ``limit`` rows of each partition, ranked; and their ranks."""
        ordered, ranks = rank_within(rows, self.pk, self.node.order)
        keep = ranks <= self.limit
        return ordered.filter(pa.array(keep)), ranks[keep]

    def _contenders(self, incoming: pa.Table, top: pa.Table, ranks: np.ndarray) -> pa.Table:
        """The incoming rows that might enter their partition's top: a row strictly worse on
        the first ORDER BY key than the ``limit``-th row of a full partition cannot.
        """
        full = top.filter(pa.array(ranks == self.limit))
        if full.num_rows == 0 or incoming.num_rows == 0:
            return incoming
        key = self.node.order[0]
        bound = full.select([*self.pk, key.column]).rename_columns([*self.pk, "__bound"])
        joined = incoming.append_column("__pos", pa.array(np.arange(incoming.num_rows))).join(
            bound, keys=self.pk, join_type="left outer"
        )
        value, limit = joined.column(key.column), joined.column("__bound")
        worse = pc.greater(value, limit) if key.ascending else pc.less(value, limit)
        keep = pc.invert(pc.fill_null(worse, False))  # NULLs on either side: keep and rank
        positions = pc.filter(joined.column("__pos"), keep).to_numpy()
        return incoming.take(pa.array(np.sort(positions)))  # in arrival order

    def _retract(self, live: pa.Table, removes: pa.Table) -> pa.Table:
        """``live`` less one matching row per retraction (the latest to arrive of equal
        rows). A retraction that matches nothing is counted and ignored.
        """
        if removes.num_rows == 0:
            return live
        assert self.match is not None
        match = self.match.state_columns
        left = pa.table(self.match.state_arrays(live))
        right = pa.table(self.match.state_arrays(removes))
        wanted = right.group_by(match, use_threads=False).aggregate([([], "count_all")])
        keyed = left.append_column("__pos", pa.array(np.arange(live.num_rows)))
        keyed = keyed.append_column(SEQ, live.column(SEQ))
        # Runs of equal rows, each ordered by arrival.
        ordered = keyed.sort_by([(c, "ascending") for c in match] + [(SEQ, "ascending")])
        index_in_run = row_numbers(ordered, match)
        run_id = np.cumsum(index_in_run == 1) - 1
        run_size = np.bincount(run_id)[run_id] if len(run_id) else run_id
        joined = (
            ordered.append_column("__idx", pa.array(index_in_run))
            .append_column("__size", pa.array(run_size))
            .join(wanted, keys=match, join_type="left outer")
        )
        taken = pc.fill_null(joined.column("count_all"), 0).to_numpy(zero_copy_only=False)
        idx = joined.column("__idx").to_numpy(zero_copy_only=False)
        size = joined.column("__size").to_numpy(zero_copy_only=False)
        keep_pos = joined.column("__pos").to_numpy(zero_copy_only=False)[idx <= size - taken]
        first_of_run = idx == 1  # count each run's retractions once
        matched = int(np.minimum(taken, size)[first_of_run].sum())
        unmatched = int(wanted.column("count_all").to_numpy().sum()) - matched
        if unmatched:
            self.ctx.metrics.add("unmatched_retractions", unmatched)
        return live.take(pa.array(np.sort(keep_pos)))

    def _save(self, touched: pa.Table, rows: pa.Table) -> None:
        table = quote(self.table)
        on = " AND ".join(f"{table}.{quote(k)} = t.{quote(k)}" for k in self.pk)
        self.ctx.state.execute_with(
            f"DELETE FROM {table} USING __touched t WHERE {on}", __touched=touched
        )
        self.ctx.state.append(self.table, rows)

    def _changes(
        self, old: pa.Table, old_ranks: np.ndarray, new: pa.Table, new_ranks: np.ndarray
    ) -> list[pa.RecordBatch]:
        """What to emit for the touched partitions going from ``old`` to ``new`` top rows."""
        if self.node.rank_name:
            before, after, before_ops, after_ops = self._by_rank(old, old_ranks, new, new_ranks)
        else:
            before, after, before_ops, after_ops = self._by_row(old, new)
        if before.num_rows == 0 and after.num_rows == 0:
            return []
        out = pa.concat_tables([before, after])
        ops = np.concatenate([before_ops, after_ops]).astype(np.int8)
        return out.append_column(OP, pa.array(ops, OP_TYPE)).to_batches()

    def _rows(self, stored: pa.Table, ranks: np.ndarray) -> pa.Table:
        table = stored.select(self.columns)
        if self.node.rank_name:
            table = table.append_column(self.node.rank_name, pa.array(ranks, pa.int64()))
        return table.cast(self.schema)

    def _slot_keys(self, rows: pa.Table, ranks: np.ndarray) -> pa.Table:
        cols = {k: rows.column(k) for k in self.pk}
        cols["__rank"] = pa.array(ranks, pa.int64())
        cols[SEQ] = rows.column(SEQ)
        cols["__pos"] = pa.array(np.arange(rows.num_rows))
        return pa.table(cols)

    def _by_rank(self, old: pa.Table, old_ranks: np.ndarray, new: pa.Table, new_ranks: np.ndarray):
        """Compare rank by rank: a rank whose row changed is retracted and re-emitted."""
        keys = [*self.pk, "__rank"]
        a = self._slot_keys(old, old_ranks)
        b = self._slot_keys(new, new_ranks)
        joined = a.join(b, keys=keys, join_type="full outer", left_suffix="_o", right_suffix="_n")
        seq_o = joined.column(f"{SEQ}_o")
        seq_n = joined.column(f"{SEQ}_n")
        same = pc.fill_null(pc.equal(seq_o, seq_n), False)
        pos_o = joined.column("__pos_o")
        pos_n = joined.column("__pos_n")
        gone = pc.and_(pc.invert(same), pc.is_valid(pos_o))
        came = pc.and_(pc.invert(same), pc.is_valid(pos_n))
        had = pc.is_valid(pos_o)
        has = pc.is_valid(pos_n)
        # The join's order is arbitrary: emit in the rows' own (partition, rank) order.
        before_idx, before_ops = _in_order(
            pc.filter(pos_o, gone), pc.filter(has, gone), UPDATE_BEFORE, DELETE
        )
        after_idx, after_ops = _in_order(
            pc.filter(pos_n, came), pc.filter(had, came), UPDATE_AFTER, INSERT
        )
        before = self._rows(old.take(before_idx), old_ranks[before_idx])
        after = self._rows(new.take(after_idx), new_ranks[after_idx])
        return before, after, before_ops, after_ops

    def _by_row(self, old: pa.Table, new: pa.Table):
        """Without ranks in the output: rows leaving the top are retracted, rows entering it
        are added. With one row per partition (dedup) the pair is an update of the key.
        """
        old_seq = old.column(SEQ)
        new_seq = new.column(SEQ)
        leaving = pc.invert(pc.is_in(old_seq, value_set=new_seq.combine_chunks()))
        entering = pc.invert(pc.is_in(new_seq, value_set=old_seq.combine_chunks()))
        before = old.filter(leaving)
        after = new.filter(entering)
        if self.limit == 1:  # dedup: a replaced row is an update of its partition key
            replaced = self._partitions_in(before, after)
            before_ops = np.where(replaced[0], UPDATE_BEFORE, DELETE)
            after_ops = np.where(replaced[1], UPDATE_AFTER, INSERT)
        else:
            before_ops = np.full(before.num_rows, DELETE)
            after_ops = np.full(after.num_rows, INSERT)
        zeros_b = np.zeros(before.num_rows, np.int64)
        zeros_a = np.zeros(after.num_rows, np.int64)
        return self._rows(before, zeros_b), self._rows(after, zeros_a), before_ops, after_ops

    def _partitions_in(self, before: pa.Table, after: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """For each row of ``before`` / ``after``: whether the other side has its partition."""
        a = pa.table({k: before.column(k) for k in self.pk}).append_column(
            "__pos", pa.array(np.arange(before.num_rows))
        )
        b = pa.table({k: after.column(k) for k in self.pk}).append_column(
            "__pos", pa.array(np.arange(after.num_rows))
        )
        both = a.join(b, keys=self.pk, join_type="inner", left_suffix="_a", right_suffix="_b")
        in_after = np.zeros(before.num_rows, bool)
        in_before = np.zeros(after.num_rows, bool)
        in_after[both.column("__pos_a").to_numpy(zero_copy_only=False)] = True
        in_before[both.column("__pos_b").to_numpy(zero_copy_only=False)] = True
        return in_after, in_before


def _in_order(
    positions: pa.Array, paired: pa.Array, if_paired: int, otherwise: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions sorted, each with its change kind: ``if_paired`` where the other side
    holds the same slot (an update), else ``otherwise``.
    """
    pos = positions.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(pos, kind="stable")
    kinds = np.where(paired.to_numpy(zero_copy_only=False), if_paired, otherwise)
    return pos[order], kinds[order]
