"""Checkpoint and restore of the windowed operators: an operator checkpointed after any
prefix of its input and restored into a fresh one (on an empty state database) goes on as
the uninterrupted one would, and state restored at another parallelism gives the answer of
one instance.

Each case runs a random stream of row batches, watermarks (some rows late) and, for early
firing, processing-time ticks, ending with the final watermark that fires every window
(state that a restore lost would show there). The write buffer is moved to DuckDB after 2
rows or only at the barrier, so that the state is in both places before the checkpoint.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsql import duck
from streamsql.config import Settings
from streamsql.plan.changelog import INSERT, UPDATE_AFTER, UPDATE_BEFORE
from streamsql.plan.emit import WindowEmit
from streamsql.plan.local_window_agg import LocalWindowAggregate
from streamsql.plan.nodes import (
    AggCall,
    SortKey,
    WindowAggregate,
    WindowSpec,
    WindowTopN,
    WindowTVF,
)
from streamsql.runtime.hashing import hash_keys, instances_of
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators import window_state
from streamsql.runtime.operators.base import Operator, OperatorContext
from streamsql.runtime.operators.session_window import SessionWindowOperator
from streamsql.runtime.operators.window_agg import WindowAggOperator
from streamsql.runtime.operators.window_assign import WindowAssignOperator
from streamsql.runtime.operators.window_local import LocalWindowAggOperator
from streamsql.runtime.operators.window_topn import WindowTopNOperator
from streamsql.runtime.snapshot import RestoreError
from streamsql.runtime.timeutil import MAX_WATERMARK
from streamsql.state import StateStore
from tests.runtime.snapshots import MAX_PARALLELISM, checkpoint, rescaled, restored, split
from tests.runtime.stubs import Input, advance, context, feed

TS = pa.timestamp("ms")
SCHEMA = pa.schema(
    [("ts", TS), ("k", pa.string()), ("c", pa.string()), ("v", pa.int64()), ("f", pa.bool_())]
)
# The same rows after a TUMBLE(10 s) table function: the input of aggregates and Top-N
# that do not assign windows themselves.
TUMBLE_10S = WindowSpec("TUMBLE", "ts", 10_000)
TVF = WindowTVF(Input(fixed=SCHEMA, rowtime="ts"), TUMBLE_10S)

COUNT = AggCall("COUNT", None, "n", pa.int64())
PLAIN = (
    COUNT,
    AggCall("SUM", "v", "s", pa.int64()),
    AggCall("AVG", "v", "avg", pa.int64()),
    AggCall("MIN", "c", "lo", pa.string()),
    AggCall("MAX", "v", "hi", pa.int64(), filter="f"),
)
DISTINCT = (AggCall("SUM", "v", "ds", pa.int64(), distinct=True),)
ALL = PLAIN + DISTINCT


class Clock:
    """Processing time (epoch ms) that the stream's ticks set."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@dataclass
class Case:
    """How to build an operator, what it hashes its input on, and how raw rows become its
    input (the local phase in front of a global one, the window table function...).
    """

    make: Callable[[], Operator]
    keys: tuple[str, ...]  # the hash keys of the operator's input edge
    upsert: tuple[str, ...] | None = None  # updates: the key whose changes keep their order
    prepare: Callable[[pa.RecordBatch], list[pa.RecordBatch]] = field(default=lambda b: [b])


def window_agg(spec: WindowSpec, aggs=ALL, keys=("k",), lateness=0, early=0, assigns=True):
    emit = WindowEmit(allow_lateness_ms=lateness, early_fire_ms=early)
    source = Input(fixed=SCHEMA) if assigns else TVF
    node = WindowAggregate(source, spec, keys, aggs, assigns=assigns, emit=emit)
    make = SessionWindowOperator if spec.is_session else WindowAggOperator
    upsert = ("window_start", "window_end", *keys) if emit.updating else None
    prepare = _tvf if not assigns else (lambda b: [b])
    shuffle = spec.partition if spec.is_session else keys
    return Case(lambda: make(node), shuffle, upsert, prepare)


def global_phase(spec: WindowSpec, keys=("k",)) -> Case:
    local = LocalWindowAggregate(Input(fixed=SCHEMA), spec, keys, PLAIN, assigns=True)
    node = WindowAggregate(
        Input(fixed=local.schema), spec, keys, PLAIN, assigns=True, phase="global"
    )
    local_op = LocalWindowAggOperator(local)
    local_op.open(context())
    return Case(lambda: WindowAggOperator(node), keys, prepare=lambda b: _all(local_op, b))


def window_topn() -> Case:
    node = WindowTopN(
        TVF, ("window_start", "window_end", "k"), (SortKey("v", ascending=False),), 2, "rn"
    )
    return Case(lambda: WindowTopNOperator(node), ("k",), prepare=_tvf)


def _tvf(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    op = WindowAssignOperator(TVF)
    return _all(op, batch)


def _all(op: Operator, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    return [b for b in op.process_batch(batch, 0) if b.num_rows]


HOP = WindowSpec("HOP", "ts", 10_000, 5_000)
HOP_MANY_PANES = WindowSpec("HOP", "ts", 30_000, 3_000)  # fires in groups of panes
CUMULATE = WindowSpec("CUMULATE", "ts", 20_000, 5_000)
SESSION = WindowSpec("SESSION", "ts", 3_000, partition=("k",))

CASES = {
    "tumble": window_agg(TUMBLE_10S),
    "tumble_tvf_two_keys": window_agg(TUMBLE_10S, keys=("k", "c"), assigns=False),
    "hop_pane_grid": window_agg(HOP, aggs=PLAIN),
    "hop_distinct": window_agg(HOP),
    "hop_many_panes": window_agg(HOP_MANY_PANES, keys=("c", "k")),
    "cumulate": window_agg(CUMULATE),
    "global_tumble": global_phase(TUMBLE_10S),
    "global_hop": global_phase(HOP),
    "tumble_lateness": window_agg(TUMBLE_10S, lateness=8_000),
    "hop_lateness": window_agg(HOP, lateness=6_000),
    "cumulate_lateness": window_agg(CUMULATE, lateness=7_000),
    "tumble_early": window_agg(TUMBLE_10S, early=1_000),
    "hop_early_lateness": window_agg(HOP, aggs=PLAIN, early=1_500, lateness=5_000),
    "session": window_agg(SESSION, aggs=PLAIN, keys=("k", "c")),
    "session_lateness": window_agg(SESSION, aggs=PLAIN, keys=("k", "c"), lateness=4_000),
    "topn": window_topn(),
}

# -- streams --------------------------------------------------------------------------------


def rows(items: list[tuple]) -> pa.RecordBatch:
    """(time in ms, k, c, v, f) -> a batch."""
    cols = list(zip(*items, strict=True))
    return pa.record_batch(
        [pa.array(cols[0], pa.int64()).cast(TS), *(pa.array(c) for c in cols[1:])],
        schema=SCHEMA,
    )


@st.composite
def streams(draw, ticks: bool = True) -> list[tuple]:
    """Events: ("rows", items), ("wm", watermark) and ("tick", processing time), ending
    with the final watermark. Rows lie around the watermark: some are late.
    """
    events: list[tuple] = []
    wm, now = 0, 0
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["rows", "rows", "wm", "tick"] if ticks else ["rows", "wm"]))
        if kind == "rows":
            row = st.tuples(
                st.integers(max(0, wm - 12_000), wm + 25_000),
                st.sampled_from(["a", "b", "c", None]),
                st.sampled_from(["x", "y"]),
                st.none() | st.integers(-3, 9),
                st.sampled_from([True, False, None]),
            )
            events.append(("rows", draw(st.lists(row, min_size=1, max_size=6))))
        elif kind == "wm":
            wm += draw(st.integers(1, 12_000))
            events.append(("wm", wm))
        else:
            now += draw(st.integers(0, 2_500))
            events.append(("tick", now))
    return [*events, ("wm", MAX_WATERMARK)]


#: The state of the operators that are not restored: in one database, each operator's
#: tables under a prefix of their own (a new DuckDB costs more than a test's work). A
#: restored one gets a new database (``restored``), as in a new process.
_SHARED = duck.connect()
_prefixes = itertools.count()


def opened(case: Case, clock: Clock, instance: int = 0) -> Operator:
    op = case.make()
    ctx = OperatorContext(
        task_id=1,
        node_index=0,
        instance=instance,
        parallelism=1,
        state=StateStore(duck.cursor(_SHARED), prefix=f"op{next(_prefixes)}_"),
        metrics=OperatorMetrics(1, instance, "op"),
        settings=Settings.defaults(),
        clock=clock,
    )
    op.open(ctx)
    return op


def step(op: Operator, event: tuple, clock: Clock, batches: list[pa.RecordBatch]) -> list[dict]:
    """One event on one instance (``batches``: its share of the event's rows)."""
    kind, arg = event
    if kind == "rows":
        return [r for b in batches for r in feed(op, b)]
    if kind == "wm":
        return advance(op, arg)
    clock.now = arg
    return [r for b in op.flush() for r in b.to_pylist()]


def inputs(case: Case, event: tuple, parallelism: int = 1) -> list[list[pa.RecordBatch]]:
    """Each instance's input batches for ``event``, split by the input's hash keys."""
    if event[0] != "rows":
        return [[] for _ in range(parallelism)]
    prepared = case.prepare(rows(event[1]))
    if parallelism == 1:
        return [prepared]
    parts = [split(b, case.keys, parallelism) for b in prepared]
    return [[p[i] for p in parts if p[i].num_rows] for i in range(parallelism)]


def run(op: Operator, case: Case, events: list[tuple], clock: Clock) -> list[list[dict]]:
    return [step(op, e, clock, inputs(case, e)[0]) for e in events]


def canonical(case: Case, out: list[dict]) -> list[dict]:
    """One event's output in an order that does not depend on which rows sat in the write
    buffer and which in DuckDB: sorted, except that the changes of one upsert key keep
    their order.
    """

    def key(row: dict) -> tuple:
        cols = case.upsert if case.upsert is not None else row
        return tuple((row[c] is None, str(row[c])) for c in cols)

    return sorted(out, key=key)


# -- checkpoint and restore at the same parallelism ------------------------------------------


@pytest.mark.parametrize("flush_rows", [2, 1_000_000], ids=["in_duckdb", "buffered"])
@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=5, deadline=None)
@given(events=streams(), data=st.data())
def test_restored_operator_goes_on_as_the_uninterrupted_one(name, flush_rows, events, data):
    """Checkpoints before some of the events (drawn), each restored into a fresh operator
    that goes on from there: a job restored again and again.
    """
    case = CASES[name]
    cuts = data.draw(st.sets(st.integers(0, len(events) - 1), min_size=1, max_size=3))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(window_state, "FLUSH_ROWS", flush_rows)
        clock = Clock()
        want = run(opened(case, clock), case, events, clock)
        clock = Clock()
        op, twin, got = opened(case, clock), None, []
        for i, event in enumerate(events):
            if i in cuts:
                snap = checkpoint(op)
                twin, op = op, restored(case.make, snap)
                op.ctx.clock, op.ctx.watermark = clock, twin.ctx.watermark
                assert op.describe_state() == twin.describe_state()
            share = inputs(case, event)[0]
            got.append(step(op, event, clock, share))
            # The instance that took the checkpoint, going on, gives the very same rows in
            # the very same order: the restored one reads its state as that one does.
            if twin is not None:
                assert step(twin, event, clock, share) == got[-1]
    assert [canonical(case, o) for o in got] == [canonical(case, o) for o in want]


# -- restore at another parallelism ----------------------------------------------------------


def run_parallel(ops: list[Operator], case: Case, events: list[tuple]) -> list[list[dict]]:
    """The events on instances whose input is split by the hash keys: every instance's
    output, together, per event.
    """
    clock = Clock()
    out = []
    for e in events:
        shares = inputs(case, e, len(ops))
        out.append(
            [r for op, share in zip(ops, shares, strict=True) for r in step(op, e, clock, share)]
        )
    return out


def rescale(
    case: Case, events: list[tuple], cut: int, old: int, new: int, then: Case | None = None
):
    """``events[:cut]`` on ``old`` instances of ``case``, checkpointed and restored on
    ``new`` instances of ``then`` (the same case by default) that get the rest.
    """
    then = then or case
    olds = [opened(case, Clock(), i) for i in range(old)]
    got = run_parallel(olds, case, events[:cut])
    snaps = [checkpoint(op) for op in olds]
    news = []
    for i, (snap, values) in enumerate(rescaled(snaps, new)):
        op = restored(then.make, snap, values, instance=i)
        op.ctx.clock, op.ctx.watermark = Clock(), olds[0].ctx.watermark
        news.append(op)
    return got + run_parallel(news, then, events[cut:])


# Processing time is per instance: early firing is left out. The HOP variants share one
# path (pane state, fired-through mark) with hop_distinct.
RESCALED = [n for n in CASES if "early" not in n and n not in ("hop_pane_grid", "tumble")]


@pytest.mark.parametrize("name", RESCALED)
@settings(max_examples=5, deadline=None)
@given(events=streams(ticks=False), data=st.data())
def test_state_restored_on_three_instances_from_two_gives_the_one_instance_answer(
    name, events, data
):
    case = CASES[name]
    cut = data.draw(st.integers(0, len(events) - 1), label="cut")
    flush_rows = data.draw(st.sampled_from([2, 1_000_000]), label="flush_rows")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(window_state, "FLUSH_ROWS", flush_rows)
        clock = Clock()
        want = run(opened(case, clock), case, events, clock)
        got = rescale(case, events, cut, 2, 3)
    assert [canonical(case, o) for o in got] == [canonical(case, o) for o in want]


def test_snapshot_rows_hash_to_the_instance_their_input_rows_go_to():
    """Every keyed state row of a snapshot belongs, by its key columns' hash, to the
    instance that the exchange sends its key's input rows to: the key columns hold the
    input's values with the input's types (for sessions: NULL keys decoded from state).
    """
    keys = [f"key{i}" for i in range(20)]
    items = [(t * 700, k, c, t % 5, True) for t in range(20) for k in keys for c in "xy"]
    items += [(t * 900, None, "x", 1, None) for t in range(10)]
    batch = rows(items)
    for name in ("tumble_tvf_two_keys", "hop_many_panes", "session_lateness", "topn"):
        case = CASES[name]
        ops = [opened(case, Clock(), i) for i in range(3)]
        for b in case.prepare(batch):
            for op, part in zip(ops, split(b, case.keys, 3), strict=True):
                feed(op, part)
        for i, op in enumerate(ops):
            snap = checkpoint(op)
            assert snap.keys, name
            # Rows may be in DuckDB or still in the write buffer: some table holds them.
            held = [t for t in snap.keys if t in snap.tables and snap.tables[t].num_rows]
            assert held, name
            for table in held:
                rows_, keys = snap.tables[table], snap.keys[table]
                owner = instances_of(hash_keys(rows_, keys), 3, MAX_PARALLELISM)
                assert (owner == i).all(), (name, table)


# -- specific states -------------------------------------------------------------------------


def _ms(t: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)


def test_hop_panes_remember_which_windows_fired():
    """Windows ending by the fired-through mark fired, also those without rows: a row of a
    pane they share with later windows, arriving after the restore, counts only in those.
    """
    case = window_agg(HOP, aggs=(COUNT,))
    op = opened(case, Clock())
    feed(op, rows([(1_000, "a", "x", 1, True)]))
    assert [r["window_end"] for r in advance(op, 12_000)] == [_ms(5_000), _ms(10_000)]
    snap = checkpoint(op)
    assert snap.values["fired_through"] == 10_000
    after = restored(case.make, snap)
    after.ctx.watermark = 12_000
    # Pane [5 s, 10 s) is part of the fired window [0, 10 s) and the open [5 s, 15 s).
    feed(after, rows([(7_000, "a", "x", 1, True)]))
    out = advance(after, MAX_WATERMARK)
    assert [(r["window_end"], r["n"]) for r in out] == [(_ms(15_000), 1)]


def test_updating_windows_keep_what_they_emitted_and_their_early_firing():
    clock = Clock()
    case = window_agg(TUMBLE_10S, aggs=(COUNT,), early=1_000, lateness=5_000)
    op = opened(case, clock)
    feed(op, rows([(1_000, "a", "x", 1, True), (12_000, "b", "x", 1, True)]))
    advance(op, 10_000)  # [0, 10 s) fired: +I a
    clock.now = 500
    feed(op, rows([(13_000, "b", "x", 1, True)]))  # the open [10 s, 20 s) changed again
    snap = checkpoint(op)
    # Due a second after the first change (at 0), for the windows ending after 10 s.
    assert snap.values["early_due"] == 1_000 and snap.values["open"] == [10_002, 20_000]
    after = restored(case.make, snap)
    after.ctx.clock, after.ctx.watermark = clock, 10_000
    clock.now = 999
    assert list(after.flush()) == []
    clock.now = 1_000
    early = [(r["k"], r["n"], r["_op"]) for b in after.flush() for r in b.to_pylist()]
    assert early == [("b", 2, INSERT)]
    # A late row updates the window emitted before the checkpoint.
    late = [(r["k"], r["n"], r["_op"]) for r in feed(after, rows([(2_000, "a", "x", 1, True)]))]
    assert late == [("a", 1, UPDATE_BEFORE), ("a", 2, UPDATE_AFTER)]


@settings(max_examples=8, deadline=None)
@given(events=streams(ticks=False), data=st.data())
def test_partials_move_between_the_one_phase_and_the_global_phase(events, data):
    """At parallelism 1 the aggregate runs in one phase, at more it may run in two (with the
    same operator id): its partials move between them.
    """
    one = window_agg(HOP, aggs=PLAIN)
    two = global_phase(HOP)
    clock = Clock()
    want = [canonical(one, o) for o in run(opened(one, clock), one, events, clock)]
    cut = data.draw(st.integers(0, len(events) - 1), label="cut")
    up = rescale(one, events, cut, 1, 3, then=two)
    assert [canonical(one, o) for o in up] == want
    down = rescale(two, events, cut, 2, 1, then=one)
    assert [canonical(one, o) for o in down] == want


def test_state_without_keys_cannot_move_to_another_parallelism():
    case = window_agg(TUMBLE_10S, keys=())
    op = opened(case, Clock())
    feed(op, rows([(1_000, "a", "x", 1, True)]))
    snap = checkpoint(op)
    assert snap.keys == {} and snap.tables["partials/buffered"].num_rows == 1
    with pytest.raises(RestoreError, match="parallelism 2"):
        rescaled([snap], 2)
    restored(case.make, snap)  # the same parallelism is fine


def test_unknown_state_is_refused():
    op = opened(CASES["tumble"], Clock())
    snap = checkpoint(op)
    snap.tables["distinct7"] = snap.tables["partials"]
    with pytest.raises(RestoreError, match="distinct7"):
        restored(CASES["tumble"].make, snap)


def test_stateless_window_operators_keep_nothing():
    local = LocalWindowAggregate(Input(fixed=SCHEMA), TUMBLE_10S, ("k",), PLAIN, assigns=True)
    for op in (LocalWindowAggOperator(local), WindowAssignOperator(TVF)):
        op.open(context())
        op.process_batch(rows([(1_000, "a", "x", 1, True)]), 0)
        assert op.checkpointable and checkpoint(op) is None


def test_sessions_merge_across_the_checkpoint():
    case = CASES["session"]
    op = opened(case, Clock())
    feed(op, rows([(1_000, "a", "x", 1, True), (1_000, None, "x", 2, True)]))
    snap = checkpoint(op)
    assert set(snap.tables["sessions"].column("__hash0").to_pylist()) == {"a", None}
    after = restored(case.make, snap)
    feed(after, rows([(3_500, "a", "x", 3, True), (2_000, None, "x", 4, True)]))
    out = advance(after, MAX_WATERMARK)
    got = {(r["k"], r["window_start"], r["window_end"], r["n"], r["s"]) for r in out}
    assert got == {
        ("a", _ms(1_000), _ms(6_500), 2, 4),
        (None, _ms(1_000), _ms(5_000), 2, 6),
    }


def test_top_n_ties_keep_arrival_order_across_the_checkpoint():
    """Rows equal in the ORDER BY rank by arrival: rows that come after the restore are
    numbered after those before it.
    """
    case = CASES["topn"]
    op = opened(case, Clock())
    for b in case.prepare(rows([(1_000, "a", "x", 5, True), (2_000, "a", "y", 5, True)])):
        feed(op, b)
    snap = checkpoint(op)
    assert snap.values["next_seq"] == 2
    after = restored(case.make, snap)
    for b in case.prepare(rows([(3_000, "a", "z", 5, True)])):
        feed(after, b)
    out = advance(after, MAX_WATERMARK)
    assert [(r["c"], r["rn"]) for r in out] == [("x", 1), ("y", 2)]
