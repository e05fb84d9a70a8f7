"""The window aggregate operator on small batches: firing, lateness, FILTER, DISTINCT,
and the write buffer moving into DuckDB state.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from streamsql.plan.nodes import AggCall, WindowAggregate, WindowSpec
from streamsql.runtime.operators import window_state
from streamsql.runtime.operators.window_agg import WindowAggOperator
from streamsql.runtime.timeutil import MAX_WATERMARK
from tests.runtime.stubs import Input, advance, context, feed, opened

TS = pa.timestamp("ms")
SCHEMA = pa.schema(
    [
        ("window_start", TS),
        ("window_end", TS),
        ("k", pa.string()),
        ("v", pa.int64()),
        ("f", pa.bool_()),
    ]
)


def _ms(t: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)


def rows(*items: tuple[int, str, int | None, bool]) -> pa.RecordBatch:
    """(window start in s, key, value, flag) -> a batch of 10-second windows."""
    starts = [s * 1000 for s, *_ in items]
    return pa.record_batch(
        {
            "window_start": pa.array(starts, pa.int64()).cast(TS),
            "window_end": pa.array([s + 10_000 for s in starts], pa.int64()).cast(TS),
            "k": [k for _, k, _, _ in items],
            "v": pa.array([v for _, _, v, _ in items], pa.int64()),
            "f": [f for *_, f in items],
        },
        schema=SCHEMA,
    )


def operator(*aggs: AggCall) -> WindowAggOperator:
    node = WindowAggregate(Input(fixed=SCHEMA), WindowSpec("TUMBLE", "ts", 10_000), ("k",), aggs)
    return opened(WindowAggOperator(node))


COUNT = AggCall("COUNT", None, "n", pa.int64())
SUM = AggCall("SUM", "v", "s", pa.int64())


def test_nothing_is_emitted_before_the_watermark_passes_the_window_end():
    op = operator(COUNT, SUM)
    assert feed(op, rows((0, "a", 1, True), (0, "a", 2, True), (10, "b", 5, True))) == []
    assert advance(op, 9_998) == []  # window [0, 10 s) ends at 9.999 s
    fired = advance(op, 9_999)
    assert fired == [
        {
            "window_start": _ms(0),
            "window_end": _ms(10_000),
            "window_time": _ms(9_999),
            "k": "a",
            "n": 2,
            "s": 3,
        }
    ]
    assert advance(op, 9_999) == []  # emitted once
    assert [r["k"] for r in advance(op, MAX_WATERMARK)] == ["b"]


def test_rows_of_fired_windows_are_dropped_and_counted():
    op = operator(COUNT)
    feed(op, rows((0, "a", 1, True)))
    advance(op, 10_000)
    assert feed(op, rows((0, "a", 1, True), (0, "b", 1, True), (10, "a", 1, True))) == []
    assert op.ctx.metrics.late_rows_dropped == 2
    assert advance(op, MAX_WATERMARK) == [
        {
            "window_start": _ms(10_000),
            "window_end": _ms(20_000),
            "window_time": _ms(19_999),
            "k": "a",
            "n": 1,
        }
    ]


def test_filter_distinct_and_nulls():
    op = operator(
        AggCall("COUNT", None, "big", pa.int64(), filter="f"),
        AggCall("COUNT", "v", "nonnull", pa.int64()),
        AggCall("COUNT", "v", "distinct", pa.int64(), distinct=True),
        AggCall("MAX", "v", "top", pa.int64(), filter="f"),
        AggCall("AVG", "v", "avg", pa.int64()),
    )
    feed(op, rows((0, "a", 3, True), (0, "a", 3, False), (0, "a", None, True)))
    feed(op, rows((0, "a", 4, False), (0, "a", 3, None)))
    (out,) = advance(op, MAX_WATERMARK)
    assert (out["big"], out["nonnull"], out["distinct"], out["top"], out["avg"]) == (2, 4, 2, 3, 3)


def test_null_keys_are_a_group_of_their_own():
    op = operator(COUNT, AggCall("COUNT", "v", "d", pa.int64(), distinct=True))
    feed(op, rows((0, None, 1, True), (0, None, 2, True), (0, "a", 1, True)))
    out = advance(op, MAX_WATERMARK)
    assert sorted((r["k"] or "", r["n"], r["d"]) for r in out) == [("", 2, 2), ("a", 1, 1)]


@pytest.mark.parametrize("flush_rows", [1, 3, 1_000_000])
def test_results_do_not_depend_on_when_the_buffer_moves_to_duckdb(monkeypatch, flush_rows):
    monkeypatch.setattr(window_state, "FLUSH_ROWS", flush_rows)
    op = operator(COUNT, SUM, AggCall("COUNT", "v", "d", pa.int64(), distinct=True))
    for i in range(12):
        feed(op, rows((0, "ab"[i % 2], i % 5, True), (10, "a", i, True)))
        if i == 6:
            first = advance(op, 9_999)
    rest = advance(op, MAX_WATERMARK)
    # i = 0..6 reach window [0, 10 s) before it fires; i = 7..11 arrive late for it.
    assert [(r["k"], r["n"], r["s"], r["d"]) for r in first] == [("a", 4, 7, 4), ("b", 3, 4, 3)]
    assert [(r["k"], r["n"], r["s"], r["d"]) for r in rest] == [("a", 12, 66, 12)]
    assert op.ctx.metrics.late_rows_dropped == 5
    state = op.describe_state()
    assert state["open_windows"] == 0
    if flush_rows == 1:
        assert op.windows.stored == set()


def test_state_lives_in_duckdb_tables_per_instance():
    ctx = context(instance=3)
    op = opened(
        WindowAggOperator(
            WindowAggregate(
                Input(fixed=SCHEMA), WindowSpec("TUMBLE", "ts", 10_000), ("k",), (COUNT,)
            )
        ),
        ctx,
    )
    table = op.windows.tables["partials"]
    assert table.endswith("_i3")
    feed(op, rows((0, "a", 1, True)))
    op.windows.flush()  # the buffer moves into the table (at FLUSH_ROWS rows)
    assert ctx.state.row_count(table) == 1
