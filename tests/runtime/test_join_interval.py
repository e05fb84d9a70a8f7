"""The interval join operator on small batches: bounds (inclusive, negative, positive),
NULL keys, the residual condition, outer padding exactly when the watermark passes, late
rows, state cleanup and the watermark delay; and a property against a nested-loop join.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql.parser.dialect import Flink
from streamsql.plan.join_nodes import JOIN_KINDS, IntervalJoin, Join
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators import join_interval
from streamsql.runtime.operators.base import OperatorContext
from streamsql.runtime.operators.chain import Chain
from streamsql.runtime.operators.join_interval import IntervalJoinOperator
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK
from tests.runtime.stubs import Input, advance, context, feed, opened

TS = pa.timestamp("ms")
LEFT = pa.schema([("k", pa.string()), ("lv", pa.int64()), ("lt", TS)])
RIGHT = pa.schema([("rk", pa.string()), ("rv", pa.int64()), ("rt", TS)])
Row = tuple[str | None, int, int | None]  # (key, value, time in ms)


def node(kind="INNER", lower=-1000, upper=1000, where=None, keyed=True) -> Join:
    condition = sqlglot.parse_one(f"SELECT {where}", read=Flink).expressions[0] if where else None
    return Join(
        Input(fixed=LEFT, rowtime="lt"),
        Input(fixed=RIGHT, rowtime="rt"),
        kind,
        ("k",) if keyed else (),
        ("rk",) if keyed else (),
        condition=condition,
        strategy=IntervalJoin("lt", "rt", lower, upper),
    )


def operator(kind="INNER", lower=-1000, upper=1000, where=None, ctx=None, keyed=True):
    return opened(IntervalJoinOperator(node(kind, lower, upper, where, keyed)), ctx)


def _batch(schema: pa.Schema, rows: tuple[Row, ...]) -> pa.RecordBatch:
    keys, values, times = zip(*rows, strict=True) if rows else ((), (), ())
    arrays = [pa.array(keys, pa.string()), pa.array(values, pa.int64())]
    arrays.append(pa.array(times, pa.int64()).cast(TS))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def left(op, *rows: Row) -> list[tuple]:
    return pairs(feed(op, _batch(LEFT, rows)))


def right(op, *rows: Row) -> list[tuple]:
    return pairs(r for out in op.process_batch(_batch(RIGHT, rows), 1) for r in out.to_pylist())


def watermark(op, wm: int) -> list[tuple]:
    return pairs(advance(op, wm))


def pairs(out) -> list[tuple]:
    """Output rows as (left value, right value), sorted; None for a padded side."""
    return sorted(((r["lv"], r["rv"]) for r in out), key=repr)


# -- matching --------------------------------------------------------------------------------


def test_pairs_match_within_the_bounds_including_both_ends():
    op = operator(lower=-1000, upper=500)
    assert left(op, ("a", 1, 10_000)) == []
    got = right(op, ("a", 10, 8_999), ("a", 11, 9_000), ("a", 12, 10_500), ("a", 13, 10_501))
    assert got == [(1, 11), (1, 12)]
    # The same pairs when the right rows come first.
    op = operator(lower=-1000, upper=500)
    right(op, ("a", 10, 8_999), ("a", 11, 9_000), ("a", 12, 10_500), ("a", 13, 10_501))
    assert left(op, ("a", 1, 10_000)) == [(1, 11), (1, 12)]


def test_keys_must_be_equal():
    op = operator()
    left(op, ("a", 1, 1_000), ("b", 2, 1_000))
    assert right(op, ("b", 20, 1_200), ("c", 30, 1_000)) == [(2, 20)]


@pytest.mark.parametrize(
    ("lower", "upper", "matching"),
    [
        (200, 300, {1_200, 1_250, 1_300}),  # the right row 200..300 ms after the left
        (-300, -200, {700, 750, 800}),  # the right row 200..300 ms before the left
        (0, 0, {1_000}),
    ],
)
def test_positive_and_negative_bounds(lower, upper, matching):
    times = [600, 699, 700, 750, 800, 801, 1_000, 1_199, 1_200, 1_250, 1_300, 1_301]
    op = operator(lower=lower, upper=upper)
    right(op, *[("a", t, t) for t in times])
    assert left(op, ("a", 0, 1_000)) == sorted((0, t) for t in matching)


def test_without_keys_every_pair_in_the_interval_matches():
    op = operator(lower=0, upper=100, keyed=False)
    left(op, ("a", 1, 1_000), ("b", 2, 1_050))
    assert right(op, (None, 10, 1_060), ("z", 11, 1_120)) == [(1, 10), (2, 10), (2, 11)]


def test_keys_whose_hashes_collide_are_still_compared(monkeypatch):
    monkeypatch.setattr(
        join_interval, "hash_keys", lambda batch, keys: np.zeros(len(batch), np.uint64)
    )
    op = operator("FULL")
    left(op, ("a", 1, 1_000), ("b", 2, 1_000))
    assert right(op, ("b", 20, 1_000), ("c", 30, 1_000)) == [(2, 20)]
    assert watermark(op, MAX_WATERMARK) == [(1, None), (None, 30)]


def test_null_keys_never_match_and_are_padded_on_outer_sides():
    op = operator("INNER")
    left(op, (None, 1, 1_000))
    assert right(op, (None, 10, 1_000)) == []
    assert watermark(op, MAX_WATERMARK) == []
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}
    op = operator("FULL")
    left(op, (None, 1, 1_000))
    assert right(op, (None, 10, 1_000)) == []
    assert watermark(op, MAX_WATERMARK) == [(1, None), (None, 10)]


def test_residual_condition_filters_pairs():
    op = operator("LEFT", where="lv < rv")
    left(op, ("a", 5, 1_000), ("a", 50, 1_000))
    assert right(op, ("a", 10, 1_100)) == [(5, 10)]
    assert watermark(op, MAX_WATERMARK) == [(50, None)]


def test_several_batches_and_both_directions():
    op = operator(lower=-100, upper=100)
    left(op, ("a", 1, 1_000))
    assert right(op, ("a", 10, 1_050)) == [(1, 10)]
    assert left(op, ("a", 2, 1_100), ("a", 3, 1_200)) == [(2, 10)]
    assert right(op, ("a", 11, 1_150)) == [(1, 11), (2, 11), (3, 11)][1:]


# -- outer joins and the watermark -----------------------------------------------------------


def test_left_join_pads_an_unmatched_left_row_exactly_when_the_watermark_passes():
    op = operator("LEFT", lower=-1000, upper=1000)
    left(op, ("a", 1, 5_000), ("b", 2, 5_000))
    right(op, ("a", 10, 5_500))
    assert watermark(op, 5_999) == []  # a right row at 6000 could still join
    assert watermark(op, 6_000) == [(2, None)]  # b never matched; a did
    assert watermark(op, MAX_WATERMARK) == []


def test_a_match_found_by_a_later_row_prevents_padding():
    op = operator("LEFT", lower=0, upper=2000)
    left(op, ("a", 1, 5_000))
    assert watermark(op, 6_000) == []
    assert right(op, ("a", 10, 6_500)) == [(1, 10)]
    assert watermark(op, 7_000) == []


def test_right_join_pads_an_unmatched_right_row_when_the_watermark_passes():
    # A right row can meet left rows up to 500 ms newer than itself (lower = -500).
    op = operator("RIGHT", lower=-500, upper=1000)
    right(op, ("a", 10, 5_000), ("b", 11, 5_000))
    assert left(op, ("a", 1, 5_400)) == [(1, 10)]
    assert watermark(op, 5_499) == []
    assert watermark(op, 5_500) == [(None, 11)]


def test_full_join_pads_both_sides_each_at_its_own_time():
    op = operator("FULL", lower=-500, upper=2000)
    left(op, ("a", 1, 5_000))
    right(op, ("b", 10, 5_000))
    assert watermark(op, 5_500) == [(None, 10)]  # right rows expire at t + 500
    assert watermark(op, 6_999) == []
    assert watermark(op, 7_000) == [(1, None)]  # left rows at t + 2000


def test_a_row_expired_on_arrival_joins_what_is_held_and_is_padded_at_once():
    # The right row must be 1..2 s older than the left: a left row newer than the
    # watermark can already be past its last chance to meet a newer right row.
    op = operator("LEFT", lower=-2000, upper=-1000)
    right(op, ("a", 10, 9_000))
    watermark(op, 10_000)  # left rows up to 11000 can meet no newer right row
    got = left(op, ("a", 1, 10_500), ("b", 2, 10_500), ("c", 3, 11_000), ("d", 4, 11_001))
    assert got == [(1, 10), (2, None), (3, None)]
    assert op.describe_state()["join_left_rows"] == 1
    assert watermark(op, 10_001) == [(4, None)]


def test_end_of_input_flushes_every_side():
    op = operator("FULL")
    left(op, ("a", 1, 1_000))
    right(op, ("a", 10, 1_500), ("a", 11, 5_000))
    assert pairs(r for out in op.close() for r in out.to_pylist()) == [(None, 11)]
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}


# -- late rows -------------------------------------------------------------------------------


class Routed:
    """Stands in for the job's late-row writer."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], int]] = []

    def write(self, rows: pa.RecordBatch, watermark: int, operator: str) -> None:
        self.calls.append(([r.get("lv", r.get("rv")) for r in rows.to_pylist()], watermark))


def test_late_rows_are_counted_routed_and_not_joined():
    ctx = context()
    ctx.late_rows = Routed()
    op = operator("FULL", lower=-1000, upper=1000, ctx=ctx)
    left(op, ("a", 1, 5_000))
    watermark(op, 5_000)
    # At or below the watermark, or without a time: late, even if a partner is held.
    assert right(op, ("a", 10, 5_000), ("a", 11, None), ("a", 12, 5_001)) == [(1, 12)]
    assert left(op, ("a", 2, 4_000)) == []
    assert op.ctx.metrics.late_rows_dropped == 3
    assert op.ctx.metrics.extra["late_rows_routed"] == 3
    assert ctx.late_rows.calls == [([10, 11], 5_000), ([2], 5_000)]
    assert watermark(op, MAX_WATERMARK) == []


def test_rows_with_a_null_time_are_late_before_any_watermark():
    op = operator("LEFT")
    assert left(op, ("a", 1, None)) == []
    assert op.ctx.metrics.late_rows_dropped == 1
    assert watermark(op, MAX_WATERMARK) == []


# -- state -----------------------------------------------------------------------------------


def test_state_shrinks_as_the_watermark_advances():
    op = operator("INNER", lower=-1000, upper=1000)
    left(op, *[("a", i, 1_000 * i) for i in range(10)])
    right(op, *[("b", i, 1_000 * i) for i in range(10)])
    assert op.describe_state() == {"join_left_rows": 10, "join_right_rows": 10}
    watermark(op, 4_999)  # 4 rows of each side expired; a run keeps them until half did
    assert op.describe_state() == {"join_left_rows": 10, "join_right_rows": 10}
    watermark(op, 5_000)  # half of each run: it is rebuilt from the rows still live
    assert op.describe_state() == {"join_left_rows": 5, "join_right_rows": 5}
    watermark(op, 10_000)
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}
    assert op.ctx.metrics.extra["join_state_rows_peak"] == 20


def test_state_stays_bounded_on_a_long_input():
    rng = np.random.default_rng(3)
    op = operator("FULL", lower=-500, upper=500)
    n, size, outputs = 200_000, 2_000, 0
    for start in range(0, n, size):
        times = np.arange(start, start + size) * 10 - rng.integers(0, 1_000, size)
        for index, schema in enumerate((LEFT, RIGHT)):
            batch = pa.RecordBatch.from_arrays(
                [
                    pa.array(rng.integers(0, 50, size).astype(str)),
                    pa.array(np.arange(start, start + size)),
                    pa.array(times).cast(TS),
                ],
                schema=schema,
            )
            outputs += sum(out.num_rows for out in op.process_batch(batch, index))
        outputs += len(advance(op, int(times.max()) - 1_000))
    outputs += len(advance(op, MAX_WATERMARK))
    peak = op.ctx.metrics.extra["join_state_rows_peak"]
    assert 0 < peak < 2 * n // 20  # a few seconds of rows, not the input
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}
    assert outputs > n and op.ctx.metrics.late_rows_dropped == 0


def test_a_checkpoint_writes_the_live_rows_to_duckdb():
    op = operator("LEFT")
    left(op, ("a", 1, 1_000), ("b", 2, 5_000))
    right(op, ("a", 10, 1_500))
    watermark(op, 3_000)  # the left row at 1000 expired
    op.on_barrier(1)
    left_table, right_table = op.tables
    rows = op.ctx.state.query(f'SELECT c0, c1, __matched FROM "{left_table}"').to_pylist()
    assert rows == [{"c0": "b", "c1": 2, "__matched": False}]
    assert op.ctx.state.row_count(right_table) == 0  # expired at 1500 + 1000


@pytest.mark.parametrize(
    ("lower", "upper", "delay"),
    [(-1000, 500, 1000), (0, 2000, 2000), (200, 300, 300), (-300, -200, 300), (0, 0, 0)],
)
def test_the_output_watermark_is_held_back_by_the_interval(lower, upper, delay):
    op = operator(lower=lower, upper=upper)
    assert op.watermark_delay_ms == delay
    chain = Chain([op], [op.ctx])
    assert chain.output_watermark(10_000) == 10_000 - delay
    assert chain.output_watermark(MAX_WATERMARK) == MAX_WATERMARK


# -- property: any batching gives the nested-loop join ---------------------------------------


@dataclass
class Event:
    side: int
    key: str | None
    time: int | None
    cut: bool  # a batch ends after this event


@st.composite
def scenarios(draw):
    delay = draw(st.sampled_from([0, 300, 1000]))
    lower = draw(st.integers(-1500, 1500))
    upper = lower + draw(st.integers(0, 1500))
    events, base = [], 0
    for _ in range(draw(st.integers(0, 30))):
        base += draw(st.integers(0, 400))
        # Mostly within the delay (on time); sometimes older (late).
        jitter = draw(st.integers(0, delay)) if draw(st.integers(0, 9)) else 3 * delay + 50
        time = None if draw(st.integers(0, 30)) == 0 else base - jitter
        side = draw(st.integers(0, 1))
        key = draw(st.sampled_from(["a", "b", "c", None]))
        events.append(Event(side, key, time, draw(st.booleans())))
    kind = draw(st.sampled_from(JOIN_KINDS))
    where = draw(st.sampled_from([None, "MOD(lv + rv, 3) <> 0"]))
    return kind, lower, upper, delay, events, where, draw(st.booleans())


def _batches(events: list[Event]):
    """(side, [(index, event)]) per batch: a batch ends at a cut or where the side changes."""
    current: list[tuple[int, Event]] = []
    for i, e in enumerate(events):
        current.append((i, e))
        following = events[i + 1] if i + 1 < len(events) else None
        if e.cut or following is None or following.side != e.side:
            yield e.side, current
            current = []


def _expected(kind, lower, upper, delay, events, where, keyed) -> Counter:
    """Drop the late rows as a source with this watermark delay makes them, then join the
    rest with nested loops.
    """
    wm, seen, kept = MIN_WATERMARK, None, []
    for _, rows in _batches(events):
        for i, e in rows:
            if e.time is not None and (wm == MIN_WATERMARK or e.time > wm):
                kept.append((i, e))
        times = [e.time for _, e in rows if e.time is not None]
        if times:
            seen = max(times) if seen is None else max(seen, *times)
            wm = max(wm, seen - delay)
    lefts = [(i, e) for i, e in kept if e.side == 0]
    rights = [(i, e) for i, e in kept if e.side == 1]
    out: Counter = Counter()
    matched: set[int] = set()
    for i, a in lefts:
        for j, b in rights:
            keys_equal = not keyed or (a.key is not None and a.key == b.key)
            holds = where is None or (i + j) % 3 != 0
            if keys_equal and holds and a.time + lower <= b.time <= a.time + upper:
                out[(i, j)] += 1
                matched |= {i, j}
    if kind in ("LEFT", "FULL"):
        out.update((i, None) for i, _ in lefts if i not in matched)
    if kind in ("RIGHT", "FULL"):
        out.update((None, j) for j, _ in rights if j not in matched)
    return out


@functools.cache
def _shared_context() -> OperatorContext:
    return context()


def _run(kind, lower, upper, delay, events, where, keyed) -> Counter:
    # One DuckDB connection for all examples (connecting is most of an example's time).
    ctx = dataclasses.replace(_shared_context(), metrics=OperatorMetrics(1, 0, "op"))
    op = operator(kind, lower, upper, where, ctx=ctx, keyed=keyed)
    out: Counter = Counter()
    seen = None
    for side, rows in _batches(events):
        schema = (LEFT, RIGHT)[side]
        batch = _batch(schema, tuple((e.key, i, e.time) for i, e in rows))
        for b in op.process_batch(batch, side):
            out.update((r["lv"], r["rv"]) for r in b.to_pylist())
        times = [e.time for _, e in rows if e.time is not None]
        if times:
            seen = max(times) if seen is None else max(seen, *times)
            wm = max(op.ctx.watermark, seen - delay)
            out.update((r["lv"], r["rv"]) for r in advance(op, wm))
    out.update((r["lv"], r["rv"]) for r in advance(op, MAX_WATERMARK))
    out.update((r["lv"], r["rv"]) for b in op.close() for r in b.to_pylist())
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_batching_gives_the_nested_loop_join(scenario):
    assert _run(*scenario) == _expected(*scenario)
