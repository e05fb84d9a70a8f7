"""Checkpoint and restore of the unbounded aggregate and the Top-N / dedup operators.

Each test runs an operator over a changelog without interruption, and again with a
checkpoint after a prefix of the batches and a fresh operator (on an empty state database)
restored from it for the rest: together the two must emit exactly what the first did,
change kinds included. Rescaled, the state of two instances is spread over three, and every
key must see the same changes in the same order as on one instance.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsql.plan.changelog import KINDS, OP, RETRACT, Changelog
from streamsql.plan.nodes import AggCall, Aggregate, SortKey, TopN
from streamsql.runtime.operators import aggregate as aggregate_module
from streamsql.runtime.operators.aggregate import AggregateOperator
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.operators.topn import TopNOperator
from streamsql.runtime.snapshot import OperatorSnapshot, RestoreError
from tests.runtime.snapshots import checkpoint, rescaled, restored, split
from tests.runtime.stubs import Input, context

Row = tuple
NO_MINI_BATCH = {"table.exec.mini-batch.enabled": "false"}


class ChangingInput(Input):
    @property
    def mode(self) -> Changelog:
        return RETRACT


# -- driving an operator -----------------------------------------------------------------------


def emitted(batches) -> list[Row]:
    """Output rows as (kind, *columns)."""
    out = []
    for b in batches:
        for row in b.to_pylist():
            out.append((KINDS[row.pop(OP)], *row.values()))
    return out


def fed(op: Operator, batches: list[pa.RecordBatch], clock: list[int] | None = None) -> list[Row]:
    """Everything ``op`` emits for ``batches``; a clock moves on by each batch's ``tick``."""
    out = []
    for batch in batches:
        if clock is not None:
            clock[0] += int(batch.schema.metadata[b"tick"])
        out += emitted(op.process_batch(batch, 0))
    return out


def opened_with(make: Callable[[], Operator], clock: list[int] | None, **config: str) -> Operator:
    op = make()
    ctx = context(**config)
    if clock is not None:
        ctx.clock = lambda: clock[0]
    op.open(ctx)
    return op


def interrupted(
    make: Callable[[], Operator],
    batches: list[pa.RecordBatch],
    cut: int,
    flush: bool = True,
    clock: list[int] | None = None,
    **config: str,
) -> tuple[list[Row], list[Row]]:
    """(uninterrupted output, output checkpointed after ``cut`` batches and restored).

    With ``flush`` both runs flush the mini-batch at the cut, as the executor does before
    a barrier; without, the held rows travel in the snapshot.
    """
    start = None if clock is None else clock[0]
    whole = opened_with(make, clock, **config)
    expected = fed(whole, batches[:cut], clock)
    if flush:
        expected += emitted(whole.flush())
    expected += fed(whole, batches[cut:], clock) + emitted(whole.close())

    if clock is not None:
        clock[0] = start
    first = opened_with(make, clock, **config)
    got = fed(first, batches[:cut], clock)
    if flush:
        got += emitted(first.flush())
    snap = shuffled(checkpoint(first), cut)
    second = restored(make, snap, **config)
    if clock is not None:
        second.ctx.clock = lambda: clock[0]
    got += fed(second, batches[cut:], clock) + emitted(second.close())
    return expected, got


def shuffled(snap: OperatorSnapshot | None, seed: int) -> OperatorSnapshot | None:
    """``snap`` with the rows of its state tables in another order, which must not matter
    (rows held for a mini-batch keep theirs: they are input yet to come, in order).
    """
    if snap is None:
        return None
    rng = np.random.default_rng(seed)
    for name, table in snap.tables.items():
        if name != "held":
            snap.tables[name] = table.take(pa.array(rng.permutation(table.num_rows)))
    return snap


def by_key(rows: list[Row], width: int) -> dict[Row, list[Row]]:
    """Each key's changes in order (the key: the first ``width`` columns)."""
    out: dict[Row, list[Row]] = {}
    for row in rows:
        out.setdefault(row[1 : 1 + width], []).append(row)
    return out


def rescale_check(
    make: Callable[[], Operator],
    batches: list[pa.RecordBatch],
    cut: int,
    keys: tuple[str, ...],
    **config: str,
) -> None:
    """One instance vs two instances checkpointed after ``cut`` batches and restored as
    three (input split by ``keys`` as the exchange splits it): every key's changes agree.
    (Without mini-batches: how rows meet in one depends on the split.)
    """
    one = opened_with(make, None, **config)
    expected = fed(one, batches) + emitted(one.close())

    old = [opened_with(make, None, **config) for _ in range(2)]
    got: dict[Row, list[Row]] = {}
    for i, op in enumerate(old):
        out = fed(op, [split(b, keys, 2)[i] for b in batches[:cut]])
        out += emitted(op.flush())
        for key, changes in by_key(out, len(keys)).items():
            assert key not in got  # each key lives on one instance
            got[key] = changes
    snaps = [checkpoint(op) for op in old]
    new = [
        restored(make, snap, values, instance=i, **config)
        for i, (snap, values) in enumerate(rescaled(snaps, 3))
    ]
    after: dict[Row, list[Row]] = {}
    for i, op in enumerate(new):
        out = fed(op, [split(b, keys, 3)[i] for b in batches[cut:]]) + emitted(op.close())
        for key, changes in by_key(out, len(keys)).items():
            assert key not in after
            after[key] = changes
    for key, changes in after.items():
        got[key] = got.get(key, []) + changes
    assert got == by_key(expected, len(keys))


# -- inputs ------------------------------------------------------------------------------------


def changelog(
    seed: int, columns: dict[str, list], events: int, updating: bool, ticks: int = 0
) -> list[pa.RecordBatch]:
    """Random batches of inserts and (when ``updating``) retractions of live rows and
    updates of them (-U/+U), whose values are drawn from ``columns``. Each batch's
    metadata ``tick`` is how far the clock moves (0..``ticks`` ms) before it.
    """
    rng = random.Random(seed)
    names = list(columns)
    live: list[tuple] = []
    rows: list[tuple] = []
    for n in range(events):
        draw = rng.random() if updating and live else 1.0
        if draw < 0.4:
            old = live.pop(rng.randrange(len(live)))
            if draw < 0.2:
                rows.append((3, *old))
            else:  # the same first column (the key) and id, the rest drawn anew
                new = tuple(
                    old[i] if i == 0 or c == "id" else rng.choice(columns[c])
                    for i, c in enumerate(names)
                )
                rows += [(1, *old), (2, *new)]
                live.append(new)
        else:
            new = tuple(rng.choice(columns[c]) for c in names)
            if "id" in columns:
                new = (*new[:-1], n)
            rows.append((0, *new))
            live.append(new)
    batches = []
    while rows:
        size = rng.randint(1, 8)
        part, rows = rows[:size], rows[size:]
        data = {c: [r[1 + i] for r in part] for i, c in enumerate(names)}
        if updating:
            data[OP] = pa.array([r[0] for r in part], pa.int8())
        tick = {"tick": str(rng.randint(0, ticks))}
        batches.append(pa.record_batch(data, schema=_schema(names, updating).with_metadata(tick)))
    return batches


TYPES = {"k": pa.string(), "j": pa.int32(), "v": pa.int64(), "f": pa.bool_(), "id": pa.int64()}


def _schema(names: list[str], updating: bool) -> pa.Schema:
    fields = [pa.field(c, TYPES[c]) for c in names]
    return pa.schema([*fields, pa.field(OP, pa.int8())] if updating else fields)


# -- the aggregate -----------------------------------------------------------------------------

AGG_VALUES = {
    "k": ["a", "b", "", None],  # '' and NULL are different keys
    "j": [1, 2, None],
    "v": [0, 1, 2, 3, 5, None],
    "f": [True, True, False],
}
AGGS = (
    AggCall("COUNT", None, "n", pa.int64()),
    AggCall("COUNT", "v", "cv", pa.int64(), filter="f"),
    AggCall("SUM", "v", "s", pa.int64()),
    AggCall("AVG", "v", "av", pa.float64()),
    AggCall("MIN", "v", "lo", pa.int64()),
    AggCall("MAX", "v", "hi", pa.int64()),
    AggCall("COUNT", "v", "d", pa.int64(), distinct=True),
    AggCall("SUM", "v", "sd", pa.int64(), distinct=True, filter="f"),
)


def aggregate(keys: tuple[str, ...] = ("k", "j"), updating: bool = True):
    schema = _schema(list(AGG_VALUES), False)
    source = ChangingInput(fixed=schema) if updating else Input(fixed=schema)
    return lambda: AggregateOperator(Aggregate(source, keys, AGGS))


def agg_input(seed: int, updating: bool = True, ticks: int = 0) -> list[pa.RecordBatch]:
    return changelog(seed, AGG_VALUES, 40, updating, ticks)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 12), updating=st.booleans())
def test_aggregate_restored_after_any_prefix_goes_on_exactly(seed, cut, updating):
    batches = agg_input(seed, updating)
    expected, got = interrupted(aggregate(updating=updating), batches, cut, **NO_MINI_BATCH)
    assert got == expected


@pytest.mark.parametrize("flush", [True, False], ids=["flushed", "held"])
@pytest.mark.parametrize(("seed", "cut"), [(0, 1), (0, 3), (0, 5), (1, 3), (2, 4)])
def test_aggregate_mini_batch_rows_survive_the_checkpoint(flush, seed, cut):
    """Held rows are flushed before the barrier (the executor's way) or, when not, kept in
    the snapshot: either way the output is the uninterrupted one.
    """
    batches = agg_input(seed)
    config = {"table.exec.mini-batch.size": "9"}
    expected, got = interrupted(aggregate(), batches, cut, flush=flush, **config)
    assert got == expected


def test_held_rows_are_in_the_snapshot():
    batches = agg_input(1)
    op = opened_with(aggregate(), None, **{"table.exec.mini-batch.size": "1000"})
    assert fed(op, batches[:3]) == []
    snap = checkpoint(op)
    assert snap.tables["held"].num_rows == sum(b.num_rows for b in batches[:3])
    assert snap.keys["held"] == ("k", "j")


def test_aggregate_snapshot_keeps_every_state_table():
    op = opened_with(aggregate(), None, **NO_MINI_BATCH)
    fed(op, agg_input(2))
    snap = checkpoint(op)
    # MIN and MAX over a retracting input and the DISTINCT ones keep value multisets.
    assert sorted(snap.tables) == ["accumulators", "values4", "values5", "values6", "values7"]
    assert snap.tables["accumulators"].num_rows == op.describe_state()["aggregate_groups"] > 0
    assert snap.tables["values6"].schema.names == ["__key0", "__key1", "v", "cnt"]
    assert set(snap.keys.values()) == {("__key0", "__key1"), ("k", "j")}


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 12))
def test_aggregate_restored_at_another_parallelism(seed, cut):
    rescale_check(aggregate(), agg_input(seed), cut, ("k", "j"), **NO_MINI_BATCH)


@pytest.mark.parametrize("sweep_s", [0.5, 0.0], ids=["periodic", "always"])
def test_state_ttl_clocks_survive_the_checkpoint(monkeypatch, sweep_s):
    """Groups expire by their last update time and the sweep's schedule, both restored:
    the clock (injected) jumps by up to 160 ms a batch against a 250 ms TTL, so whether a
    group is found expired depends on when the sweep last ran (every 500 ms) or,
    sweeping at every batch, on exactly when the group was last updated.
    """
    monkeypatch.setattr(aggregate_module, "TTL_SWEEP_S", sweep_s)
    config = {**NO_MINI_BATCH, "table.exec.state.ttl": "250 ms"}
    batches = changelog(5, {**AGG_VALUES, "k": ["a", "b"]}, 50, True, ticks=160)
    make = aggregate()
    clock = [0]
    whole = opened_with(make, clock, **config)
    fed(whole, batches, clock)
    assert whole.ctx.metrics.extra["state_expired_keys"] > 0  # the TTL does matter here
    for cut in (3, 9):
        expected, got = interrupted(make, batches, cut, clock=[1_000_000], **config)
        assert got == expected, cut


def test_global_aggregate_restores_at_one_instance_only():
    make = aggregate(keys=())
    batches = agg_input(3)
    expected, got = interrupted(make, batches, 7, **NO_MINI_BATCH)
    assert got == expected
    op = opened_with(make, None, **NO_MINI_BATCH)
    fed(op, batches[:7])
    snap = checkpoint(op)
    assert snap.keys == {}
    assert snap.tables["accumulators"].schema.names[0] == "__n"  # no key columns at all
    with pytest.raises(RestoreError, match="not partitioned by key"):
        rescaled([snap, snap], 3)


# -- Top-N and dedup ---------------------------------------------------------------------------

TOPN_VALUES = {"k": ["a", "b", "c", "", None], "v": [1, 2, 2, 3, 4, None], "id": [0]}
#: (limit, rank column, ORDER BY v DESC or ASC): Top-N with and without the rank, dedup.
VARIANTS = {
    "top3-rank": (3, "rn", False),
    "top2": (2, None, False),
    "dedup-max": (1, None, False),
    "dedup-min": (1, None, True),
    "dedup-rank": (1, "rn", True),
}


def topn(variant: str, updating: bool, keys: tuple[str, ...] = ("k",)):
    limit, rank, ascending = VARIANTS[variant]
    schema = _schema(list(TOPN_VALUES), False)
    source = ChangingInput(fixed=schema) if updating else Input(fixed=schema)
    order = (SortKey("v", ascending=ascending),)
    return lambda: TopNOperator(TopN(source, keys, order, limit, rank))


def topn_input(seed: int, updating: bool) -> list[pa.RecordBatch]:
    # Ties in v are frequent: arrival order decides them, and must survive the restore.
    return changelog(seed, TOPN_VALUES, 50, updating)


@settings(max_examples=6, deadline=None)
@given(
    variant=st.sampled_from(list(VARIANTS)),
    updating=st.booleans(),
    seed=st.integers(0, 10_000),
    cut=st.integers(0, 15),
)
def test_topn_restored_after_any_prefix_goes_on_exactly(variant, updating, seed, cut):
    expected, got = interrupted(topn(variant, updating), topn_input(seed, updating), cut)
    assert got == expected


def test_topn_without_partition_keys_restores_unkeyed():
    make = topn("top3-rank", True, keys=())
    batches = topn_input(4, True)
    expected, got = interrupted(make, batches, 9)
    assert got == expected
    op = opened_with(make, None)
    fed(op, batches[:9])
    assert checkpoint(op).keys == {}


@settings(max_examples=5, deadline=None)
@given(
    variant=st.sampled_from(list(VARIANTS)),
    updating=st.booleans(),
    seed=st.integers(0, 10_000),
    cut=st.integers(0, 15),
)
def test_topn_restored_at_another_parallelism(variant, updating, seed, cut):
    rescale_check(topn(variant, updating), topn_input(seed, updating), cut, ("k",))


def test_rows_from_two_old_instances_are_numbered_apart():
    """Partitions that meet on one instance after a rescale bring the arrival numbers of
    two old instances, which start alike; a dedup tells rows apart by them, so they are
    numbered anew on restore.
    """
    keys = ("k",)
    first = pa.record_batch({"k": ["f", "k"], "v": [1, 1], "id": [0, 1]})
    assert [b.num_rows for b in split(first, keys, 2)] == [1, 1]  # apart on two
    assert [b.num_rows for b in split(first, keys, 3)] == [0, 2, 0]  # together on three
    make = topn("dedup-max", False)
    old = [opened_with(make, None) for _ in range(2)]
    for op, part in zip(old, split(first, keys, 2), strict=True):
        assert len(fed(op, [part])) == 1
    snap, values = rescaled([checkpoint(op) for op in old], 3)[1]
    op = restored(make, snap, values, instance=1)
    later = pa.record_batch({"k": ["f", "k"], "v": [5, 0], "id": [2, 3]})
    assert fed(op, [later]) == [("-U", "f", 1, 0), ("+U", "f", 5, 2)]
