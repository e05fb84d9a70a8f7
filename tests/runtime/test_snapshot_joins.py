"""Checkpoint and restore of the join operators: a run interrupted by a checkpoint at any
point and restored into a fresh operator gives the output of an uninterrupted run (the same
rows with the same row kinds, at the same steps, in the same order), and two instances
restored as three give the same rows at each step; the snapshot's keys hash like each
input's router. The lookup join and UNION ALL keep nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql import duck
from streamsql.parser.dialect import Flink
from streamsql.plan.changelog import KINDS, OP, RETRACT, Changelog
from streamsql.plan.join_nodes import (
    JOIN_KINDS,
    IntervalJoin,
    Join,
    RegularJoin,
    TemporalJoin,
    Union,
    WindowJoin,
)
from streamsql.runtime.hashing import hash_keys, instances_of
from streamsql.runtime.operators import join_state, window_state
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.operators.join_interval import IntervalJoinOperator
from streamsql.runtime.operators.join_lookup import LookupJoinOperator
from streamsql.runtime.operators.join_regular import RegularJoinOperator
from streamsql.runtime.operators.join_temporal import TemporalJoinOperator
from streamsql.runtime.operators.join_window import WindowJoinOperator
from streamsql.runtime.operators.union import UnionOperator
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK
from tests.runtime.snapshots import (
    MAX_PARALLELISM,
    checkpoint,
    rescaled,
    restored,
    split,
)
from tests.runtime.stubs import Input, opened
from tests.runtime.test_join_lookup import dim, lookup, rows

TS = pa.timestamp("ms")
OPS = {v: k for k, v in KINDS.items()}
PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class ChangingInput(Input):
    @property
    def mode(self) -> Changelog:
        return RETRACT


# -- running a script of steps, with a checkpoint and restore ---------------------------------

#: ("in", input, batch) | ("wm", watermark) | ("clock", processing time in ms)
Step = tuple


@dataclass
class Job:
    """Runs an operator over a script of steps at a parallelism, optionally checkpointed
    before step ``at`` and restored (at another parallelism, ``after``) in fresh instances.
    Each input's batches go to the instances as the router on that input's keys sends them.
    """

    make: Callable[[], Operator]
    keys: tuple[tuple[str, ...], tuple[str, ...]]
    settings: dict[str, str] = field(default_factory=dict)

    def run(
        self, steps: list[Step], at: int | None = None, before: int = 1, after: int = 1
    ) -> list[list[tuple]]:
        """The output rows of each step, as (row kind, *values), all instances together."""
        self.now, self.watermark = 0, MIN_WATERMARK
        self.started: list[Operator] = []
        try:
            ops = [self._start(i) for i in range(before)]
            outputs = []
            for i, step in enumerate(steps):
                if i == at:
                    ops = self._restore([checkpoint(op, epoch=1) for op in ops], after)
                outputs.append([row for op in ops for row in self._apply(op, step, len(ops))])
            return outputs
        finally:
            for op in self.started:  # empty again, for the next instance
                op.ctx.state.drop_all()
                _IDLE.append(op.ctx.state.con)

    def _start(self, instance: int, snapshot=None, values=None) -> Operator:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(duck, "connect", _connection)
            op = restored(self.make, snapshot, values, instance, **self.settings)
        self.started.append(op)
        op.ctx.clock = lambda: self.now
        op.ctx.watermark = self.watermark  # as the executor sets it on restore
        return op

    def _restore(self, snapshots: list, parallelism: int) -> list[Operator]:
        if len(snapshots) == parallelism:
            return [self._start(i, s) for i, s in enumerate(snapshots)]
        return [self._start(i, s, v) for i, (s, v) in enumerate(rescaled(snapshots, parallelism))]

    def _apply(self, op: Operator, step: Step, parallelism: int) -> list[tuple]:
        match step:
            case ("clock", now):
                self.now = now
                return []
            case ("wm", watermark):
                self.watermark = watermark
                op.ctx.watermark = watermark
                return _rows(op.on_watermark(watermark))
            case ("in", index, batch):
                if parallelism > 1:
                    batch = split(batch, self.keys[index], parallelism)[op.ctx.instance]
                return _rows(op.process_batch(batch, index)) if batch.num_rows else []
        raise AssertionError(step)


#: Connections of finished runs, their tables dropped: a new one costs ~50 ms.
_IDLE: list[duck.Connection] = []
_connect = duck.connect


def _connection() -> duck.Connection:
    return _IDLE.pop() if _IDLE else _connect()


def _rows(batches) -> list[tuple]:
    """(row kind, *values), times in epoch ms."""
    out = []
    for b in batches:
        for row in b.to_pylist():
            kind = KINDS[row.pop(OP)] if OP in row else "+I"
            out.append((kind, *(_ms(v) for v in row.values())))
    return out


def _ms(value):
    if isinstance(value, dt.datetime):
        return (value - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)
    return value


def multisets(outputs: list[list[tuple]]) -> list[Counter]:
    return [Counter(step) for step in outputs]


def check(job: Job, steps: list[Step], at: int) -> None:
    """Restored at ``at`` at the same parallelism: each step's output as without the
    checkpoint, in the same order; two instances restored as three: each step's rows as
    one instance gives them.
    """
    expected = job.run(steps)
    assert job.run(steps, at) == expected
    assert multisets(job.run(steps, at, before=2, after=3)) == multisets(expected)


def parse(where: str | None):
    return sqlglot.parse_one(f"SELECT {where}", read=Flink).expressions[0] if where else None


# -- regular join ------------------------------------------------------------------------------

# Keys at different places on the two sides: the snapshot names each side's own columns.
R_LEFT = pa.schema([("x", pa.int64()), ("a", pa.string())])
R_RIGHT = pa.schema([("b", pa.string()), ("y", pa.int64())])
KEYS = ["k1", "k2", "k3", "k4", "k5", None]


def regular(kind: str, updating=(False, False), where=None) -> Job:
    inputs = [
        (ChangingInput if changing else Input)(fixed=schema)
        for changing, schema in zip(updating, (R_LEFT, R_RIGHT), strict=True)
    ]
    node = Join(*inputs, kind, ("a",), ("b",), parse(where), RegularJoin())
    return Job(lambda: RegularJoinOperator(node), (("a",), ("b",)))


def regular_batch(index: int, items: list[tuple]) -> pa.RecordBatch:
    """Items (kind, key, value) of input ``index``; an append-only input takes no kinds."""
    schema = (R_LEFT, R_RIGHT)[index]
    keys = pa.array([k for _, k, _ in items], pa.string())
    values = pa.array([v for _, _, v in items], pa.int64())
    batch = pa.record_batch([values, keys] if index == 0 else [keys, values], schema=schema)
    if any(kind != "+I" for kind, _, _ in items):
        batch = batch.append_column(OP, pa.array([OPS[k] for k, _, _ in items], pa.int8()))
    return batch


@st.composite
def regular_scripts(draw):
    updating = (draw(st.booleans()), draw(st.booleans()))
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        index = draw(st.integers(0, 1))
        kinds = st.sampled_from(["+I", "+I", "-D"] if updating[index] else ["+I"])
        item = st.tuples(kinds, st.sampled_from(KEYS), st.integers(0, 2))
        steps.append(
            ("in", index, regular_batch(index, draw(st.lists(item, min_size=1, max_size=6))))
        )
    return updating, steps, draw(st.integers(0, len(steps)))


@PROPERTY
@given(
    kind=st.sampled_from(JOIN_KINDS),
    script=regular_scripts(),
    flush_rows=st.sampled_from([1, 3, join_state.FLUSH_ROWS]),
)
def test_a_regular_join_goes_on_from_a_checkpoint_at_any_point(kind, script, flush_rows):
    updating, steps, at = script
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(join_state, "FLUSH_ROWS", flush_rows)
        check(regular(kind, updating, where="x <= y + 1"), steps, at)


def test_outer_match_counts_survive_a_restore():
    """A padded row whose match leaves after the restore is padded again, once."""
    job = regular("FULL", updating=(False, True))
    steps = [
        ("in", 0, regular_batch(0, [("+I", "k1", 1), ("+I", "k2", 2)])),
        ("in", 1, regular_batch(1, [("+I", "k1", 10), ("+I", "k1", 10)])),
        ("in", 1, regular_batch(1, [("-D", "k1", 10)])),
        ("in", 1, regular_batch(1, [("-D", "k1", 10), ("+I", "k2", 20)])),
    ]
    expected = [
        [("+I", 1, "k1", None, None), ("+I", 2, "k2", None, None)],
        [("-D", 1, "k1", None, None), ("+I", 1, "k1", "k1", 10), ("+I", 1, "k1", "k1", 10)],
        [("-D", 1, "k1", "k1", 10)],
        [
            ("-D", 1, "k1", "k1", 10),
            ("+I", 1, "k1", None, None),
            ("-D", 2, "k2", None, None),
            ("+I", 2, "k2", "k2", 20),
        ],
    ]
    assert job.run(steps) == expected
    for at in range(len(steps) + 1):
        assert job.run(steps, at) == expected


def test_entries_of_two_old_instances_restored_in_one_stay_apart():
    """k1 and k4 lived on different instances of two, with the same entry numbers; both
    go to instance 1 of three, where taking one out must leave the other.
    """
    job = regular("FULL", updating=(True, False))
    steps = [
        ("in", 0, regular_batch(0, [("+I", "k1", 1), ("+I", "k4", 2)])),
        ("in", 0, regular_batch(0, [("-D", "k1", 1)])),
        ("in", 1, regular_batch(1, [("+I", "k4", 10)])),
    ]
    expected = [
        [("+I", 1, "k1", None, None), ("+I", 2, "k4", None, None)],
        [("-D", 1, "k1", None, None)],
        [("-D", 2, "k4", None, None), ("+I", 2, "k4", "k4", 10)],
    ]
    for at in range(len(steps) + 1):
        assert multisets(job.run(steps, at, before=2, after=3)) == multisets(expected)


@pytest.mark.parametrize("flush_rows", [1, join_state.FLUSH_ROWS])
def test_the_state_ttl_counts_from_the_writes_before_the_checkpoint(monkeypatch, flush_rows):
    monkeypatch.setattr(join_state, "FLUSH_ROWS", flush_rows)
    job = regular("LEFT")
    job.settings = {"table.exec.state.ttl": "10 s"}
    steps = [
        ("clock", 1_000_000),
        ("in", 0, regular_batch(0, [("+I", "k1", 1)])),
        ("clock", 1_006_000),
        ("in", 0, regular_batch(0, [("+I", "k2", 2)])),
        ("clock", 1_012_000),  # k1's row expired, k2's did not
        ("in", 1, regular_batch(1, [("+I", "k1", 10), ("+I", "k2", 20)])),
    ]
    expected = job.run(steps)
    assert expected[-1] == [("-D", 2, "k2", None, None), ("+I", 2, "k2", "k2", 20)]
    for at in range(len(steps) + 1):
        assert job.run(steps, at) == expected
    assert multisets(job.run(steps, 4, before=2, after=3)) == multisets(expected)


def test_the_snapshot_keys_hash_like_the_router_of_each_input():
    """Keys of several columns and types (a timestamp read back from DuckDB must keep its
    unit): each stored row belongs to the instance its input row was routed to.
    """
    left = pa.schema([("v", pa.int64()), ("t", TS), ("s", pa.string())])
    right = pa.schema([("s2", pa.string()), ("w", pa.float64()), ("t2", TS)])
    node = Join(Input(fixed=left), Input(fixed=right), "FULL", ("t", "s"), ("t2", "s2"))
    op = opened(RegularJoinOperator(node))
    n = 200
    times = pa.array([i * 1_000 for i in range(n)], pa.int64()).cast(TS)
    names = pa.array([f"n{i % 7}" for i in range(n)])
    batches = (
        pa.record_batch([pa.array(range(n), pa.int64()), times, names], schema=left),
        pa.record_batch([names, pa.array([0.5] * n), times], schema=right),
    )
    for index, batch in enumerate(batches):
        op.process_batch(batch, index)
    snap = checkpoint(op)
    for side, batch, keys in zip(
        ("left", "right"), batches, (("t", "s"), ("t2", "s2")), strict=True
    ):
        table = snap.tables[side]
        assert table.num_rows == n
        routed = instances_of(hash_keys(batch, keys), 3, MAX_PARALLELISM)
        assert (instances_of(hash_keys(table, snap.keys[side]), 3, MAX_PARALLELISM) == routed).all()


def test_a_join_without_keys_keeps_unkeyed_tables():
    node = Join(Input(fixed=R_LEFT), Input(fixed=R_RIGHT), "INNER", (), ())
    op = opened(RegularJoinOperator(node))
    op.process_batch(regular_batch(0, [("+I", "k1", 1)]), 0)
    snap = checkpoint(op)
    assert snap.keys == {} and snap.tables["left"].num_rows == 1


# -- interval join ----------------------------------------------------------------------------

I_LEFT = pa.schema([("k", pa.string()), ("lv", pa.int64()), ("lt", TS)])
I_RIGHT = pa.schema([("rk", pa.string()), ("rv", pa.int64()), ("rt", TS)])


def interval(kind: str, lower: int, upper: int) -> Job:
    node = Join(
        Input(fixed=I_LEFT, rowtime="lt"),
        Input(fixed=I_RIGHT, rowtime="rt"),
        kind,
        ("k",),
        ("rk",),
        parse("lv <> rv + 5"),
        IntervalJoin("lt", "rt", lower, upper),
    )
    return Job(lambda: IntervalJoinOperator(node), (("k",), ("rk",)))


def timed_batch(schema: pa.Schema, items: list[tuple]) -> pa.RecordBatch:
    """Items (key, value, time in ms)."""
    keys, values, times = zip(*items, strict=True)
    arrays = [pa.array(keys, pa.string()), pa.array(values, pa.int64())]
    return pa.record_batch([*arrays, pa.array(times, pa.int64()).cast(TS)], schema=schema)


def two_input_script(draw, batch, step_ms: int) -> tuple[list[tuple], int]:
    """Steps on a two-input operator: batches (``batch(draw, input, watermark)`` makes
    each) on either input with watermarks between them, then the end of input; and a cut
    point among the steps.
    """
    steps = []
    wm = 0
    for _ in range(draw(st.integers(1, 8))):
        index = draw(st.integers(0, 1))
        steps.append(("in", index, batch(draw, index, wm)))
        if draw(st.booleans()):
            wm += draw(st.integers(0, step_ms))
            steps.append(("wm", wm))
    steps.append(("wm", MAX_WATERMARK))
    return steps, draw(st.integers(0, len(steps)))


@st.composite
def timed_scripts(draw, schemas: tuple[pa.Schema, pa.Schema], span: int, step_ms: int):
    """Batches of rows near the watermark on either input, watermarks between them."""

    def batch(draw, index: int, wm: int) -> pa.RecordBatch:
        item = st.tuples(st.sampled_from(KEYS), st.integers(0, 3), st.integers(0, span))
        items = [(k, v, wm + t) for k, v, t in draw(st.lists(item, min_size=1, max_size=6))]
        return timed_batch(schemas[index], items)

    return two_input_script(draw, batch, step_ms)


@PROPERTY
@given(
    kind=st.sampled_from(JOIN_KINDS),
    bounds=st.sampled_from([(-1000, 1000), (0, 2000), (-3000, -500), (0, 0)]),
    script=timed_scripts((I_LEFT, I_RIGHT), span=3_000, step_ms=1_500),
)
def test_an_interval_join_goes_on_from_a_checkpoint_at_any_point(kind, bounds, script):
    steps, at = script
    check(interval(kind, *bounds), steps, at)


def test_an_interval_join_pads_restored_rows_when_they_expire():
    job = interval("FULL", -1000, 1000)
    steps = [
        ("in", 0, timed_batch(I_LEFT, [("k1", 1, 1_000), ("k2", 2, 1_500)])),
        ("in", 1, timed_batch(I_RIGHT, [("k1", 10, 1_800), ("k3", 30, 5_000)])),
        ("wm", 2_000),  # the left rows expire at 2000 and 2500
        ("wm", 3_000),
        ("in", 1, timed_batch(I_RIGHT, [("k2", 20, 3_100)])),  # k2's left row is gone
        ("wm", MAX_WATERMARK),
    ]
    expected = [
        [],
        [("+I", "k1", 1, 1_000, "k1", 10, 1_800)],
        [],
        [("+I", "k2", 2, 1_500, None, None, None)],
        [],
        [("+I", None, None, None, "k3", 30, 5_000), ("+I", None, None, None, "k2", 20, 3_100)],
    ]
    for at in [None, *range(len(steps) + 1)]:
        assert job.run(steps, at) == expected


# -- window join ------------------------------------------------------------------------------

SIZE = 10_000
W_LEFT = pa.schema(
    [("window_start", TS), ("window_end", TS), ("k", pa.string()), ("v", pa.int64())]
)
W_RIGHT = pa.schema(
    [("window_start0", TS), ("window_end0", TS), ("k0", pa.string()), ("w", pa.int64())]
)
W_KEYS = (("window_start", "window_end", "k"), ("window_start0", "window_end0", "k0"))


def window(kind: str) -> Job:
    node = Join(
        Input(fixed=W_LEFT, rowtime="window_end"),
        Input(fixed=W_RIGHT, rowtime="window_end0"),
        kind,
        *W_KEYS,
        parse("v <= w + 1"),
        WindowJoin("window_end", "window_end0"),
    )
    return Job(lambda: WindowJoinOperator(node), W_KEYS)


def window_batch(schema: pa.Schema, items: list[tuple]) -> pa.RecordBatch:
    """Items (window start in ms, key, value) of SIZE-long windows."""
    starts = pa.array([s for s, _, _ in items], pa.int64())
    ends = pa.array([s + SIZE for s, _, _ in items], pa.int64())
    return pa.record_batch(
        [
            starts.cast(TS),
            ends.cast(TS),
            pa.array([k for _, k, _ in items], pa.string()),
            pa.array([v for _, _, v in items], pa.int64()),
        ],
        schema=schema,
    )


@st.composite
def window_scripts(draw):
    """Batches of windowed rows on either input, watermarks between them."""

    def batch(draw, index: int, wm: int) -> pa.RecordBatch:
        start = st.sampled_from([0, SIZE, 2 * SIZE, 3 * SIZE])
        item = st.tuples(start, st.sampled_from(KEYS), st.integers(0, 3))
        items = draw(st.lists(item, min_size=1, max_size=6))
        return window_batch((W_LEFT, W_RIGHT)[index], items)

    return two_input_script(draw, batch, SIZE)


@PROPERTY
@given(
    kind=st.sampled_from(JOIN_KINDS),
    script=window_scripts(),
    flush_rows=st.sampled_from([1, 3, window_state.FLUSH_ROWS]),
)
def test_a_window_join_goes_on_from_a_checkpoint_at_any_point(kind, script, flush_rows):
    steps, at = script
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(window_state, "FLUSH_ROWS", flush_rows)
        check(window(kind), steps, at)


def test_rows_of_a_window_arriving_after_the_restore_follow_the_restored_ones():
    job = window("LEFT")
    steps = [
        ("in", 0, window_batch(W_LEFT, [(0, "k1", 1), (0, "k1", 2)])),
        ("in", 0, window_batch(W_LEFT, [(0, "k1", 3)])),
        ("in", 1, window_batch(W_RIGHT, [(0, "k1", 9)])),
        ("wm", MAX_WATERMARK),
    ]
    expected = job.run(steps)
    assert [r[4] for r in expected[-1]] == [1, 2, 3]
    for at in range(len(steps) + 1):
        assert job.run(steps, at) == expected


# -- temporal join ----------------------------------------------------------------------------

ORDERS = pa.schema([("id", pa.int64()), ("cur", pa.string()), ("ts", TS)])
RATES = pa.schema([("c", pa.string()), ("rate", pa.int64()), ("vt", TS)])


def temporal(kind: str) -> Job:
    node = Join(
        Input(fixed=ORDERS, rowtime="ts"),
        ChangingInput(fixed=RATES, rowtime="vt"),
        kind,
        ("cur",),
        ("c",),
        strategy=TemporalJoin("ts", "vt"),
    )
    return Job(lambda: TemporalJoinOperator(node), (("cur",), ("c",)))


def order_batch(items: list[tuple]) -> pa.RecordBatch:
    """Items (id, currency, time in ms)."""
    ids, curs, times = zip(*items, strict=True)
    return pa.record_batch(
        [pa.array(ids, pa.int64()), pa.array(curs, pa.string()), pa.array(times).cast(TS)],
        schema=ORDERS,
    )


def rate_batch(items: list[tuple]) -> pa.RecordBatch:
    """Items (kind, currency, rate, time in ms)."""
    kinds, curs, rates, times = zip(*items, strict=True)
    batch = pa.record_batch(
        [pa.array(curs, pa.string()), pa.array(rates, pa.int64()), pa.array(times).cast(TS)],
        schema=RATES,
    )
    return batch.append_column(OP, pa.array([OPS[k] for k in kinds], pa.int8()))


@st.composite
def temporal_scripts(draw):
    """Orders (input 0, append-only, with unique ids) and rate changes (input 1, a
    changelog) near the watermark, watermarks between them.
    """
    ids = 0
    t = st.integers(0, 3_000)

    def batch(draw, index: int, wm: int) -> pa.RecordBatch:
        nonlocal ids
        if index == 0:
            items = draw(st.lists(st.tuples(st.sampled_from(KEYS), t), min_size=1, max_size=6))
            batch = order_batch([(ids + i, k, wm + d) for i, (k, d) in enumerate(items)])
            ids += len(items)
            return batch
        kind = st.sampled_from(["+I", "+U", "-U", "-D"])
        item = st.tuples(kind, st.sampled_from(KEYS), st.integers(0, 9), t)
        items = draw(st.lists(item, min_size=1, max_size=6))
        return rate_batch([(o, k, r, wm + d) for o, k, r, d in items])

    return two_input_script(draw, batch, 1_500)


@PROPERTY
@given(kind=st.sampled_from(["INNER", "LEFT"]), script=temporal_scripts())
def test_a_temporal_join_goes_on_from_a_checkpoint_at_any_point(kind, script):
    steps, at = script
    check(temporal(kind), steps, at)


def test_a_restored_temporal_join_keeps_its_watermark_for_late_rows():
    job = temporal("LEFT")
    steps = [
        ("in", 1, rate_batch([("+I", "EUR", 1, 0)])),
        ("wm", 100),
        ("in", 0, order_batch([(1, "EUR", 50), (2, "EUR", 150)])),  # 1 is late
        ("wm", MAX_WATERMARK),
    ]
    expected = job.run(steps)
    assert [(r[1], r[5]) for step in expected for r in step] == [(2, 1)]
    for at in range(len(steps) + 1):
        assert job.run(steps, at) == expected


def test_a_version_arriving_after_the_restore_wins_a_tie_on_time():
    job = temporal("LEFT")
    steps = [
        ("in", 0, order_batch([(1, "EUR", 5)])),
        ("in", 1, rate_batch([("+I", "EUR", 1, 5)])),
        ("in", 1, rate_batch([("+U", "EUR", 2, 5)])),  # the same time, a later arrival
        ("wm", MAX_WATERMARK),
    ]
    expected = job.run(steps)
    assert [(r[1], r[5]) for step in expected for r in step] == [(1, 2)]
    for at in range(len(steps) + 1):
        assert job.run(steps, at) == expected


# -- operators without state -----------------------------------------------------------------


def test_the_lookup_join_keeps_nothing_and_reads_its_table_again(tmp_path):
    node = lookup(dim(tmp_path, "1,one,10\n"))
    op = opened(LookupJoinOperator(node))
    first = [r["d_name"] for b in op.process_batch(rows((1, 1, 5)), 0) for r in b.to_pylist()]
    assert first == ["one"]
    assert checkpoint(op) is None
    (tmp_path / "dim.csv").write_text("1,uno,10\n")  # what a restored job finds
    again = restored(lambda: LookupJoinOperator(node), None)
    out = [r["d_name"] for b in again.process_batch(rows((2, 1, 5)), 0) for r in b.to_pylist()]
    assert out == ["uno"]


def test_union_keeps_nothing():
    op = opened(UnionOperator(Union((Input(fixed=R_LEFT), Input(fixed=R_LEFT)))))
    assert checkpoint(op) is None
