"""Updating window results at the operator level: allowed lateness (late rows update fired
windows as -U/+U until the watermark passes end - 1 + lateness, then state is purged) and
early firing on a fake processing-time clock, for TUMBLE, HOP, CUMULATE and SESSION.
"""

from __future__ import annotations

import datetime as dt
import doctest

import pyarrow as pa
import pytest

from streamsql.plan import emit as plan_emit
from streamsql.plan.changelog import DELETE, INSERT, UPDATE_AFTER, UPDATE_BEFORE
from streamsql.plan.emit import WindowEmit
from streamsql.plan.nodes import AggCall, WindowAggregate, WindowSpec
from streamsql.runtime.operators import window_emit, window_state
from streamsql.runtime.operators.session_window import SessionWindowOperator
from streamsql.runtime.operators.window_agg import WindowAggOperator
from streamsql.runtime.timeutil import MAX_WATERMARK
from tests.changelog_check import check_changelog
from tests.runtime.stubs import Input, advance, context, feed, opened

TS = pa.timestamp("ms")
SCHEMA = pa.schema([("ts", TS), ("k", pa.string()), ("v", pa.int64())])
IN, UB, UA, D = INSERT, UPDATE_BEFORE, UPDATE_AFTER, DELETE

COUNT = AggCall("COUNT", None, "n", pa.int64())
SUM = AggCall("SUM", "v", "s", pa.int64())


def rows(*items: tuple[int, str | None, int]) -> pa.RecordBatch:
    """(time in ms, key, value) -> a batch."""
    return pa.record_batch(
        {
            "ts": pa.array([t for t, _, _ in items], pa.int64()).cast(TS),
            "k": [k for _, k, _ in items],
            "v": pa.array([v for *_, v in items], pa.int64()),
        },
        schema=SCHEMA,
    )


class Clock:
    """A fake processing-time clock (epoch ms) that tests move by hand."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def operator(
    spec: WindowSpec,
    *,
    lateness: int = 0,
    early: int = 0,
    aggs: tuple[AggCall, ...] = (COUNT, SUM),
    clock: Clock | None = None,
):
    emit = WindowEmit(allow_lateness_ms=lateness, early_fire_ms=early)
    node = WindowAggregate(Input(fixed=SCHEMA), spec, ("k",), aggs, assigns=True, emit=emit)
    op = SessionWindowOperator(node) if spec.is_session else WindowAggOperator(node)
    ctx = context()
    ctx.clock = clock
    return opened(op, ctx)


def tumble(**kw) -> WindowAggOperator:
    return operator(WindowSpec("TUMBLE", "ts", 10_000), **kw)


def _ms(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def changes(out: list[dict]) -> list[tuple]:
    """(window end in ms, key, count, sum, op) per emitted change."""
    return [(_ms(r["window_end"]), r["k"], r["n"], r["s"], r["_op"]) for r in out]


def spans(out: list[dict]) -> list[tuple]:
    """(window start in ms, then as ``changes``) per emitted change."""
    return [(_ms(r["window_start"]), *c) for r, c in zip(out, changes(out), strict=True)]


def flushed(op) -> list[dict]:
    return [r for b in op.flush() for r in b.to_pylist()]


# -- allowed lateness ------------------------------------------------------------------------


def test_a_late_row_within_the_lateness_updates_its_fired_window():
    op = tumble(lateness=5_000)
    feed(op, rows((1_000, "a", 1), (2_000, "b", 2), (12_000, "a", 5)))
    assert changes(advance(op, 10_000)) == [(10_000, "a", 1, 1, IN), (10_000, "b", 1, 2, IN)]
    assert changes(feed(op, rows((3_000, "a", 10), (4_000, "a", 20)))) == [
        (10_000, "a", 1, 1, UB),
        (10_000, "a", 3, 31, UA),
    ]
    # A late row of a key the window has not seen is new: +I.
    assert changes(feed(op, rows((5_000, "c", 7)))) == [(10_000, "c", 1, 7, IN)]
    assert op.ctx.metrics.late_rows_dropped == 0


def test_rows_later_than_the_lateness_are_dropped_and_counted_and_state_is_purged():
    op = tumble(lateness=5_000)
    feed(op, rows((1_000, "a", 1), (12_000, "a", 5)))
    advance(op, 10_000)
    assert op.describe_state() == {
        "window_agg_state_rows": 2,
        "open_windows": 2,
        "emitted_rows": 1,
    }
    # The window [0, 10 s) is kept until the watermark passes 10 s - 1 ms + 5 s.
    assert advance(op, 14_998) == []
    assert changes(feed(op, rows((9_999, "a", 1)))) == [
        (10_000, "a", 1, 1, UB),
        (10_000, "a", 2, 2, UA),
    ]
    assert advance(op, 14_999) == []
    assert op.describe_state() == {
        "window_agg_state_rows": 1,
        "open_windows": 1,
        "emitted_rows": 0,
    }
    assert feed(op, rows((9_999, "a", 100))) == []
    assert op.ctx.metrics.late_rows_dropped == 1
    assert changes(advance(op, MAX_WATERMARK)) == [(20_000, "a", 1, 5, IN)]
    assert op.describe_state() == {
        "window_agg_state_rows": 0,
        "open_windows": 0,
        "emitted_rows": 0,
    }


def test_a_late_update_that_changes_nothing_emits_nothing():
    op = tumble(lateness=60_000, aggs=(AggCall("MAX", "v", "s", pa.int64()), COUNT))
    feed(op, rows((1_000, "a", 9)))
    advance(op, 10_000)
    out = feed(op, rows((2_000, "a", 3)))  # MAX stays 9, but COUNT changes
    assert [(r["s"], r["n"], r["_op"]) for r in out] == [(9, 1, UB), (9, 2, UA)]
    only_max = tumble(lateness=60_000, aggs=(AggCall("MAX", "v", "s", pa.int64()),))
    feed(only_max, rows((1_000, "a", 9)))
    advance(only_max, 10_000)
    assert feed(only_max, rows((2_000, "a", 3))) == []


@pytest.mark.parametrize("flush_rows", [1, 1_000_000])
def test_updates_do_not_depend_on_when_state_moves_to_duckdb(monkeypatch, flush_rows):
    monkeypatch.setattr(window_state, "FLUSH_ROWS", flush_rows)
    op = tumble(lateness=30_000, aggs=(COUNT, SUM, AggCall("COUNT", "v", "d", pa.int64(), True)))
    out = feed(op, rows((1_000, "a", 1), (2_000, "a", 1), (15_000, "b", 2)))
    out += advance(op, 20_000)
    out += feed(op, rows((3_000, "a", 2), (16_000, "b", 2), (4_000, None, 1)))
    out += advance(op, MAX_WATERMARK)
    got = [(r["window_end"].second, r["k"] or "", r["n"], r["s"], r["d"], r["_op"]) for r in out]
    # Per window and key in order (a -U before its +U); keys of one batch in any order.
    assert sorted(got, key=lambda c: c[:2]) == [
        (10, "", 1, 1, 1, IN),
        (10, "a", 2, 2, 1, IN),
        (10, "a", 2, 2, 1, UB),
        (10, "a", 3, 4, 2, UA),
        (20, "b", 1, 2, 1, IN),
        (20, "b", 1, 2, 1, UB),
        (20, "b", 2, 4, 1, UA),
    ]
    assert op.describe_state()["window_agg_state_rows"] == 0


def test_hop_keeps_panes_until_their_last_window_is_past_the_lateness():
    # HOP(slide 5 s, size 10 s): panes of 5 s, each in two windows.
    op = operator(WindowSpec("HOP", "ts", 10_000, 5_000), lateness=5_000)
    feed(op, rows((1_000, "a", 1), (6_000, "a", 2)))
    assert changes(advance(op, 10_000)) == [(5_000, "a", 1, 1, IN), (10_000, "a", 2, 3, IN)]
    # Window [-5 s, 5 s) is past its lateness (5 s - 1 ms + 5 s <= 10 s); [0, 10 s) is not:
    # a late row of the pane [0, 5 s) updates only the latter.
    assert changes(feed(op, rows((2_000, "a", 10)))) == [
        (10_000, "a", 2, 3, UB),
        (10_000, "a", 3, 13, UA),
    ]
    assert op.ctx.metrics.late_rows_dropped == 0
    assert op.describe_state()["open_windows"] == 2  # the panes [0, 5 s) and [5 s, 10 s)
    advance(op, 15_000)  # [0, 10 s) past its lateness: pane [0, 5 s) is no longer needed
    assert op.describe_state()["open_windows"] == 1
    assert feed(op, rows((4_000, "a", 100))) == []
    assert op.ctx.metrics.late_rows_dropped == 1
    assert changes(feed(op, rows((9_000, "a", 1000)))) == [
        (15_000, "a", 1, 2, UB),
        (15_000, "a", 2, 1002, UA),
    ]
    assert advance(op, MAX_WATERMARK) == []  # [10 s, 20 s) holds no row
    assert op.describe_state() == {
        "window_agg_state_rows": 0,
        "open_windows": 0,
        "emitted_rows": 0,
    }


def test_cumulate_updates_every_kept_window_a_late_row_belongs_to():
    # CUMULATE(step 5 s, max 15 s): windows [0, 5 s), [0, 10 s), [0, 15 s).
    op = operator(WindowSpec("CUMULATE", "ts", 15_000, 5_000), lateness=4_000)
    feed(op, rows((1_000, "a", 1)))
    assert changes(advance(op, 9_999)) == [(5_000, "a", 1, 1, IN), (10_000, "a", 1, 1, IN)]
    # [0, 5 s) is past its lateness; the row still counts in [0, 10 s) and in [0, 15 s).
    assert changes(feed(op, rows((2_000, "a", 5)))) == [
        (10_000, "a", 1, 1, UB),
        (10_000, "a", 2, 6, UA),
    ]
    assert op.ctx.metrics.late_rows_dropped == 0
    assert changes(advance(op, MAX_WATERMARK)) == [(15_000, "a", 2, 6, IN)]


def test_window_rows_from_a_window_table_function_are_updated_too():
    schema = pa.schema([("window_start", TS), ("window_end", TS), ("k", pa.string())])
    emit = WindowEmit(allow_lateness_ms=10_000)
    node = WindowAggregate(
        Input(fixed=schema), WindowSpec("TUMBLE", "ts", 10_000), ("k",), (COUNT,), emit=emit
    )
    op = opened(WindowAggOperator(node))

    def batch(*keys: str) -> pa.RecordBatch:
        n = len(keys)
        starts = pa.array([0] * n, pa.int64()).cast(TS)
        ends = pa.array([10_000] * n, pa.int64()).cast(TS)
        return pa.record_batch([starts, ends, pa.array(keys)], schema=schema)

    feed(op, batch("a"))
    assert [(r["n"], r["_op"]) for r in advance(op, 10_000)] == [(1, IN)]
    assert [(r["n"], r["_op"]) for r in feed(op, batch("a", "a"))] == [(1, UB), (3, UA)]


def test_append_only_hop_never_emits_a_window_after_the_watermark_passed_it():
    op = operator(WindowSpec("HOP", "ts", 10_000, 5_000))
    feed(op, rows((1_000, "a", 1)))
    advance(op, 30_000)  # [20 s, 30 s) closes empty
    assert feed(op, rows((26_000, "a", 1))) == []  # too late for it, in time for [25 s, 35 s)
    assert advance(op, 31_000) == []
    assert [(r["window_end"].second, r["n"]) for r in advance(op, MAX_WATERMARK)] == [(35, 1)]
    assert op.ctx.metrics.late_rows_dropped == 0


# -- early firing ---------------------------------------------------------------------------


def test_early_firing_emits_changed_partial_results_every_delay():
    clock = Clock()
    op = tumble(early=1_000, clock=clock)
    assert feed(op, rows((1_000, "a", 1), (2_000, "b", 2))) == []
    clock.now = 999
    assert flushed(op) == []
    clock.now = 1_000
    assert changes(flushed(op)) == [(10_000, "a", 1, 1, IN), (10_000, "b", 1, 2, IN)]
    clock.now = 5_000
    assert flushed(op) == []  # nothing changed
    feed(op, rows((3_000, "a", 4)))
    assert flushed(op) == []  # changed, but the delay runs from the change
    clock.now = 6_000
    assert changes(flushed(op)) == [(10_000, "a", 1, 1, UB), (10_000, "a", 2, 5, UA)]
    # Early results are due in process_batch too (a busy input may never be idle).
    feed(op, rows((4_000, "a", 0)))
    clock.now = 7_000
    assert changes(feed(op, rows((15_000, "c", 1)))) == [
        (10_000, "a", 2, 5, UB),
        (10_000, "a", 3, 5, UA),
        (20_000, "c", 1, 1, IN),
    ]
    clock.now = 9_000
    assert flushed(op) == []


def test_at_close_the_final_result_updates_the_early_one_only_if_it_changed():
    clock = Clock()
    op = tumble(early=1_000, clock=clock)
    feed(op, rows((1_000, "a", 1), (2_000, "b", 2)))
    clock.now = 1_000
    flushed(op)
    feed(op, rows((3_000, "a", 1), (12_000, "c", 3)))  # not yet fired early again
    # At close: a changed since its early result (-U/+U), b did not (nothing); the later
    # window is still open.
    assert changes(advance(op, 10_000)) == [(10_000, "a", 1, 1, UB), (10_000, "a", 2, 2, UA)]
    assert op.describe_state()["emitted_rows"] == 0  # no lateness: closed windows are gone
    clock.now = 5_000
    assert changes(flushed(op)) == [(20_000, "c", 1, 3, IN)]
    # A window that closes before its early result is due is emitted once, as +I.
    feed(op, rows((25_000, "d", 4)))
    assert changes(advance(op, 30_000)) == [(30_000, "d", 1, 4, IN)]
    clock.now = 10_000
    assert flushed(op) == []
    assert feed(op, rows((3_000, "a", 1))) == []  # late, no lateness: dropped
    assert op.ctx.metrics.late_rows_dropped == 1


def test_early_firing_with_lateness_gives_one_consistent_changelog():
    clock = Clock()
    op = tumble(early=500, lateness=10_000, clock=clock)
    out = feed(op, rows((1_000, "a", 1)))
    clock.now = 500
    out += flushed(op)
    out += feed(op, rows((2_000, "a", 2)))
    out += advance(op, 10_000)  # final: -U/+U
    out += feed(op, rows((3_000, "a", 3)))  # late: -U/+U at once
    out += advance(op, MAX_WATERMARK)
    assert changes(out) == [
        (10_000, "a", 1, 1, IN),
        (10_000, "a", 1, 1, UB),
        (10_000, "a", 2, 3, UA),
        (10_000, "a", 2, 3, UB),
        (10_000, "a", 3, 6, UA),
    ]
    batches = [pa.RecordBatch.from_pylist(out)]
    live = check_changelog(batches, ("window_start", "window_end", "k"))
    assert sum(live.values()) == 1


def test_hop_early_firing_emits_each_open_window():
    clock = Clock()
    op = operator(WindowSpec("HOP", "ts", 10_000, 5_000), early=1_000, clock=clock)
    feed(op, rows((1_000, "a", 1)))
    clock.now = 1_000
    assert changes(flushed(op)) == [(5_000, "a", 1, 1, IN), (10_000, "a", 1, 1, IN)]
    feed(op, rows((6_000, "a", 2)))
    clock.now = 2_000
    assert changes(flushed(op)) == [
        (10_000, "a", 1, 1, UB),
        (10_000, "a", 2, 3, UA),
        (15_000, "a", 1, 2, IN),
    ]
    assert advance(op, MAX_WATERMARK) == []  # every result was final already


# -- SESSION ----------------------------------------------------------------------------------


def session(lateness: int) -> SessionWindowOperator:
    return operator(WindowSpec("SESSION", "ts", 1_000, partition=("k",)), lateness=lateness)


def test_a_late_row_inside_a_fired_session_updates_it():
    op = session(lateness=5_000)
    feed(op, rows((0, "a", 1), (500, "a", 2)))
    assert spans(advance(op, 2_000)) == [(0, 1_500, "a", 2, 3, IN)]
    assert spans(feed(op, rows((200, "a", 10)))) == [
        (0, 1_500, "a", 2, 3, UB),
        (0, 1_500, "a", 3, 13, UA),
    ]


def test_a_late_row_that_grows_or_bridges_fired_sessions_replaces_them():
    op = session(lateness=5_000)
    feed(op, rows((0, "a", 1), (2_500, "a", 2)))
    assert spans(advance(op, 4_000)) == [(0, 1_000, "a", 1, 1, IN), (2_500, 3_500, "a", 1, 2, IN)]
    # [1000, 2000) touches [0, 1000) and grows it; the bounds change: -D, then +I.
    assert spans(feed(op, rows((1_000, "a", 10)))) == [
        (0, 1_000, "a", 1, 1, D),
        (0, 2_000, "a", 2, 11, IN),
    ]
    # [1600, 2600) bridges both fired sessions into one.
    assert spans(feed(op, rows((1_600, "a", 100)))) == [
        (0, 2_000, "a", 2, 11, D),
        (2_500, 3_500, "a", 1, 2, D),
        (0, 3_500, "a", 4, 113, IN),
    ]


def test_a_late_row_that_joins_a_fired_session_to_an_open_one_retracts_the_fired_one():
    op = session(lateness=5_000)
    feed(op, rows((0, "a", 1), (1_900, "a", 2)))
    assert spans(advance(op, 1_500)) == [(0, 1_000, "a", 1, 1, IN)]
    # [900, 1900) joins [0, 1000) to the open [1900, 2900): the merged one fires later.
    assert spans(feed(op, rows((900, "a", 10)))) == [(0, 1_000, "a", 1, 1, D)]
    assert spans(advance(op, MAX_WATERMARK)) == [(0, 2_900, "a", 3, 13, IN)]


def test_sessions_past_their_lateness_are_dropped_and_late_rows_counted():
    op = session(lateness=2_000)
    feed(op, rows((0, "a", 1)))
    advance(op, 2_998)  # [0, 1000) fired, kept until the watermark passes 2999
    assert op.describe_state() == {"session_state_rows": 1}
    assert spans(feed(op, rows((500, "a", 1)))) == [
        (0, 1_000, "a", 1, 1, D),
        (0, 1_500, "a", 2, 2, IN),
    ]
    advance(op, 3_499)
    assert op.describe_state() == {"session_state_rows": 0}
    assert feed(op, rows((400, "a", 1))) == []
    assert op.ctx.metrics.late_rows_dropped == 1
    # A new session that ended already but is within the lateness fires at once.
    assert spans(feed(op, rows((2_000, "b", 5)))) == [(2_000, 3_000, "b", 1, 5, IN)]


# -- pieces ---------------------------------------------------------------------------------


def test_keep_limit_is_the_fire_limit_shifted_by_the_lateness():
    assert window_emit.keep_limit(MAX_WATERMARK, 10_000) == MAX_WATERMARK
    assert window_emit.keep_limit(window_state.fire_limit(0) - 1, 0) == 1
    assert window_emit.keep_limit(-(2**63), 10_000) == -(2**63) + 1


def test_early_firing_waits_for_a_change():
    clock = Clock()
    timer = window_emit.EarlyFiring(100, clock)
    assert not timer.due()
    timer.changed()
    clock.now = 99
    assert not timer.due()
    timer.changed()  # the first change since the last firing sets the time
    clock.now = 100
    assert timer.due()
    assert not timer.due()


@pytest.mark.parametrize("module", [window_emit, plan_emit])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]
