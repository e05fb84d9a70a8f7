"""The session window operator on small batches: growing, bridging, keys, lateness, state."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from streamsql.plan.nodes import AggCall, WindowAggregate, WindowSpec
from streamsql.runtime.operators.session_window import (
    SessionWindowOperator,
    _segmented_cummax,
)
from streamsql.runtime.timeutil import MAX_WATERMARK
from tests.runtime.stubs import Input, advance, feed, opened

TS = pa.timestamp("ms")
SCHEMA = pa.schema([("k", pa.string()), ("c", pa.string()), ("v", pa.int64()), ("ts", TS)])
GAP = 1000


def _ms(t: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)


def rows(*items: tuple[str | None, int | None, int], c: str = "x") -> pa.RecordBatch:
    """(key, value, time in ms) -> a batch."""
    return pa.record_batch(
        {
            "k": [k for k, _, _ in items],
            "c": [c] * len(items),
            "v": pa.array([v for _, v, _ in items], pa.int64()),
            "ts": pa.array([t for *_, t in items], pa.int64()).cast(TS),
        },
        schema=SCHEMA,
    )


COUNT = AggCall("COUNT", None, "n", pa.int64())
SUM = AggCall("SUM", "v", "s", pa.int64())
MAX = AggCall("MAX", "v", "hi", pa.int64())


def operator(*aggs: AggCall, keys=("k",), partition=("k",)) -> SessionWindowOperator:
    spec = WindowSpec("SESSION", "ts", GAP, partition=partition)
    node = WindowAggregate(Input(fixed=SCHEMA), spec, keys, aggs or (COUNT, SUM), assigns=True)
    return opened(SessionWindowOperator(node))


def sessions(out: list[dict]) -> list[tuple]:
    return [
        (r["window_start"], r["window_end"], r.get("k"), *(r[a] for a in ("n", "s") if a in r))
        for r in out
    ]


def test_a_session_grows_and_is_emitted_when_the_watermark_passes_its_end():
    op = operator()
    assert feed(op, rows(("a", 1, 0), ("a", 2, 600))) == []
    assert advance(op, 1598) == []  # the session is [0, 1600): it closes at 1599
    assert feed(op, rows(("a", 3, 1500))) == []  # still open: it grows to [0, 2500)
    assert advance(op, 2498) == []
    assert sessions(advance(op, 2499)) == [(_ms(0), _ms(2500), "a", 3, 6)]


def test_touching_intervals_merge_and_a_gap_splits():
    op = operator()
    feed(op, rows(("a", 1, 0), ("a", 1, 1000), ("a", 1, 2001)))  # 1000 - 0 = gap: merged
    assert sessions(advance(op, MAX_WATERMARK)) == [
        (_ms(0), _ms(2000), "a", 2, 2),
        (_ms(2001), _ms(3001), "a", 1, 1),
    ]


def test_a_row_that_bridges_two_sessions_merges_them():
    op = operator()
    feed(op, rows(("a", 1, 0), ("a", 10, 1800)))  # [0, 1000) and [1800, 2800)
    feed(op, rows(("a", 100, 900)))  # [900, 1900) touches both
    assert sessions(advance(op, MAX_WATERMARK)) == [(_ms(0), _ms(2800), "a", 3, 111)]


def test_keys_have_sessions_of_their_own_and_null_is_a_key():
    op = operator()
    feed(op, rows(("a", 1, 0), ("b", 2, 500), (None, 4, 700), ("a", 8, 900)))
    out = sorted(sessions(advance(op, MAX_WATERMARK)), key=lambda r: str(r[2]))
    assert out == [
        (_ms(700), _ms(1700), None, 1, 4),
        (_ms(0), _ms(1900), "a", 2, 9),
        (_ms(500), _ms(1500), "b", 1, 2),
    ]


def test_extra_group_keys_split_a_session_without_changing_its_bounds():
    op = operator(keys=("k", "c"), partition=("k",))
    feed(op, rows(("a", 1, 0), c="x"))
    feed(op, rows(("a", 2, 800), c="y"))
    out = sorted((r["c"], r["window_start"], r["window_end"], r["n"]) for r in advance(op, 10**6))
    assert out == [("x", _ms(0), _ms(1800), 1), ("y", _ms(0), _ms(1800), 1)]


def test_rows_whose_session_already_closed_are_late_and_counted():
    op = operator()
    feed(op, rows(("a", 1, 0)))
    assert sessions(advance(op, 5000)) == [(_ms(0), _ms(1000), "a", 1, 1)]
    # [3000, 4000) closed before it came (its last ms 3999 <= 5000): late.
    assert feed(op, rows(("a", 1, 3000), ("a", 1, 4500))) == []
    assert op.ctx.metrics.late_rows_dropped == 1  # 4500 + gap - 1 = 5499 > 5000: on time
    assert sessions(advance(op, MAX_WATERMARK)) == [(_ms(4500), _ms(5500), "a", 1, 1)]


def test_a_row_joining_an_open_session_is_not_late_even_if_its_own_interval_closed():
    op = operator()
    feed(op, rows(("a", 1, 2000), ("a", 1, 2900)))  # [2000, 3900)
    advance(op, 2500)
    feed(op, rows(("a", 5, 1000)))  # [1000, 2000) ended at 2000 <= 2501, but touches
    assert op.ctx.metrics.late_rows_dropped == 0
    assert sessions(advance(op, MAX_WATERMARK)) == [(_ms(1000), _ms(3900), "a", 3, 7)]


def test_null_values_and_max():
    op = operator(COUNT, SUM, MAX)
    feed(op, rows(("a", None, 0), ("a", None, 10)))
    out = advance(op, MAX_WATERMARK)
    assert [(r["n"], r["s"], r["hi"]) for r in out] == [(2, None, None)]


def test_open_sessions_are_written_to_duckdb_at_a_barrier():
    op = operator()
    feed(op, rows(("a", 1, 0), ("b", 1, 5000)))
    op.on_barrier(1)
    (count,) = op.ctx.state.execute(f'SELECT count(*) FROM "{op.table}"')[0]
    assert count == 2
    assert op.describe_state() == {"session_state_rows": 2}
    advance(op, MAX_WATERMARK)
    op.on_barrier(2)
    assert op.ctx.state.execute(f'SELECT count(*) FROM "{op.table}"')[0] == (0,)


@pytest.mark.parametrize("big", [False, True])
def test_segmented_running_maximum_restarts_at_each_segment(big):
    values = np.array([5, 3, 9, 1, 2, 7, 4, 8], dtype=np.int64)
    if big:  # a range that would overflow the lifting trick: the log-step scan runs
        values = values * (2**58)
    starts = np.array([1, 0, 0, 1, 0, 0, 1, 0], dtype=bool)
    expected = np.array([5, 5, 9, 1, 2, 7, 4, 8], dtype=np.int64) * (2**58 if big else 1)
    assert _segmented_cummax(values, starts).tolist() == expected.tolist()
