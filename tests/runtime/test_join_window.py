"""The window join operator on small batches: nothing before a window closes, pairs and
NULL padding at close, late rows, several windows at once, bounded state, and a property
against a nested-loop batch join.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql.parser.dialect import Flink
from streamsql.plan.join_nodes import JOIN_KINDS, Join, WindowJoin
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators import join_window, window_state
from streamsql.runtime.operators.base import OperatorContext
from streamsql.runtime.operators.join_window import WindowJoinOperator
from streamsql.runtime.timeutil import MAX_WATERMARK
from tests.runtime.stubs import Input, advance, context, opened

TS = pa.timestamp("ms")
LEFT = pa.schema([("window_start", TS), ("window_end", TS), ("k", pa.string()), ("v", pa.int64())])
RIGHT = pa.schema(
    [("window_start0", TS), ("window_end0", TS), ("k0", pa.string()), ("w", pa.int64())]
)
SIZE = 10_000  # ms
Row = tuple[int, str | None, int | None]  # (window start in ms, key, value)


def _ms(t: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)


def batch(schema: pa.Schema, *items: Row) -> pa.RecordBatch:
    """Rows of ``SIZE``-long windows: (window start in ms, key, value)."""
    starts = pa.array([s for s, _, _ in items], pa.int64())
    return pa.record_batch(
        [
            starts.cast(TS),
            pa.array([s + SIZE for s, _, _ in items], pa.int64()).cast(TS),
            pa.array([k for _, k, _ in items], pa.string()),
            pa.array([v for _, _, v in items], pa.int64()),
        ],
        schema=schema,
    )


def operator(kind: str = "INNER", where: str | None = None, ctx=None) -> WindowJoinOperator:
    condition = None
    if where is not None:
        condition = sqlglot.parse_one(f"SELECT {where} FROM t", read=Flink).expressions[0]
    node = Join(
        Input(fixed=LEFT, rowtime="window_end"),
        Input(fixed=RIGHT, rowtime="window_end0"),
        kind,
        ("window_start", "window_end", "k"),
        ("window_start0", "window_end0", "k0"),
        condition,
        WindowJoin("window_end", "window_end0"),
    )
    return opened(WindowJoinOperator(node), ctx)


def left(op: WindowJoinOperator, *items: Row) -> list[dict]:
    return [r for out in op.process_batch(batch(LEFT, *items), 0) for r in out.to_pylist()]


def right(op: WindowJoinOperator, *items: Row) -> list[dict]:
    return [r for out in op.process_batch(batch(RIGHT, *items), 1) for r in out.to_pylist()]


def brief(rows: list[dict]) -> list[tuple]:
    """(left window start, k, v, right window start, k0, w) in s, for short expectations."""

    def s(t: dt.datetime | None) -> int | None:
        return None if t is None else (t - _ms(0)) // dt.timedelta(seconds=1)

    return [
        (s(r["window_start"]), r["k"], r["v"], s(r["window_start0"]), r["k0"], r["w"]) for r in rows
    ]


def test_nothing_is_emitted_before_the_window_closes_then_its_pairs():
    op = operator()
    assert left(op, (0, "a", 1), (0, "a", 2), (0, "b", 3)) == []
    assert right(op, (0, "a", 10), (0, "b", 30), (0, "c", 40)) == []
    assert advance(op, SIZE - 2) == []  # the window [0, 10 s) closes at 9.999 s
    out = advance(op, SIZE - 1)
    assert out[0] == {
        "window_start": _ms(0),
        "window_end": _ms(SIZE),
        "k": "a",
        "v": 1,
        "window_start0": _ms(0),
        "window_end0": _ms(SIZE),
        "k0": "a",
        "w": 10,
    }
    assert brief(out) == [(0, "a", 1, 0, "a", 10), (0, "a", 2, 0, "a", 10), (0, "b", 3, 0, "b", 30)]
    assert advance(op, MAX_WATERMARK) == []  # emitted once
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}


def test_rows_of_different_windows_do_not_join():
    op = operator()
    left(op, (0, "a", 1), (10_000, "a", 2))
    right(op, (10_000, "a", 20), (20_000, "a", 30))
    assert brief(advance(op, MAX_WATERMARK)) == [(10, "a", 2, 10, "a", 20)]


def test_null_keys_never_match():
    op = operator("FULL")
    left(op, (0, None, 1), (0, "a", 2))
    right(op, (0, None, 10), (0, "a", 20))
    assert brief(advance(op, MAX_WATERMARK)) == [
        (0, None, 1, None, None, None),
        (0, "a", 2, 0, "a", 20),
        (None, None, None, 0, None, 10),
    ]


def test_the_residual_condition_filters_pairs_and_outer_rows_stay():
    op = operator("LEFT", where="v < w")
    left(op, (0, "a", 1), (0, "a", 50), (0, "a", None))
    right(op, (0, "a", 10), (0, "a", 40))
    assert brief(advance(op, MAX_WATERMARK)) == [
        (0, "a", 1, 0, "a", 10),
        (0, "a", 1, 0, "a", 40),
        (0, "a", 50, None, None, None),
        (0, "a", None, None, None, None),
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("INNER", [(0, "a", 1, 0, "a", 10)]),
        ("LEFT", [(0, "a", 1, 0, "a", 10), (0, "b", 2, None, None, None)]),
        ("RIGHT", [(0, "a", 1, 0, "a", 10), (None, None, None, 0, "c", 30)]),
        (
            "FULL",
            [
                (0, "a", 1, 0, "a", 10),
                (0, "b", 2, None, None, None),
                (None, None, None, 0, "c", 30),
            ],
        ),
    ],
)
def test_outer_joins_pad_unmatched_rows_when_the_window_closes(kind, expected):
    op = operator(kind)
    left(op, (0, "a", 1), (0, "b", 2))
    right(op, (0, "c", 30), (0, "a", 10))
    assert advance(op, SIZE - 2) == []
    assert brief(advance(op, SIZE - 1)) == expected


def test_a_window_held_by_one_side_only_is_padded_for_outer_joins():
    op = operator("RIGHT")
    right(op, (0, "a", 10))
    assert brief(advance(op, MAX_WATERMARK)) == [(None, None, None, 0, "a", 10)]
    op = operator("INNER")
    right(op, (0, "a", 10))
    assert advance(op, MAX_WATERMARK) == []


class Routed:
    """Stands in for the job's late-row writer."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict], int]] = []

    def write(self, rows: pa.RecordBatch, watermark: int, operator: str) -> None:
        self.calls.append((rows.to_pylist(), watermark))


def test_rows_of_closed_windows_are_late_and_not_joined():
    ctx = context()
    ctx.late_rows = Routed()
    op = operator("FULL", ctx=ctx)
    left(op, (0, "a", 1))
    advance(op, SIZE - 1)
    assert left(op, (0, "a", 2), (10_000, "a", 3)) == []
    assert right(op, (0, "a", 20), (10_000, "a", 30)) == []
    assert op.ctx.metrics.late_rows_dropped == 2
    assert op.ctx.metrics.extra["late_rows_routed"] == 2
    routed = [(rows[0].get("v", rows[0].get("w")), wm) for rows, wm in ctx.late_rows.calls]
    assert routed == [(2, SIZE - 1), (20, SIZE - 1)]
    assert brief(advance(op, MAX_WATERMARK)) == [(10, "a", 3, 10, "a", 30)]


@pytest.mark.parametrize("group_rows", [1, 4, 1 << 20])
def test_several_windows_closing_at_once_come_in_window_end_order(monkeypatch, group_rows):
    monkeypatch.setattr(join_window, "GROUP_ROWS", group_rows)  # joined a few at a time
    op = operator("FULL")
    right(op, (20_000, "a", 3), (0, "z", 9), (10_000, "a", 2), (0, "a", 1))
    left(op, (20_000, "a", 30), (10_000, "b", 20), (0, "a", 10))
    assert brief(advance(op, 29_999)) == [
        (0, "a", 10, 0, "a", 1),
        (None, None, None, 0, "z", 9),
        (10, "b", 20, None, None, None),
        (None, None, None, 10, "a", 2),
        (20, "a", 30, 20, "a", 3),
    ]


def test_windows_that_fire_together_are_joined_in_groups_of_whole_windows(monkeypatch):
    monkeypatch.setattr(join_window, "GROUP_ROWS", 3)
    ends_left, ends_right = np.array([10, 10, 20, 30, 40]), np.array([10, 20, 20, 40])
    assert join_window._groups(ends_left, ends_right) == [  # (offset, length) per side
        ((0, 2), (0, 1)),
        ((2, 1), (1, 2)),
        ((3, 2), (3, 1)),
    ]


def test_close_fires_every_open_window():
    op = operator()
    left(op, (0, "a", 1), (50_000, "a", 2))
    right(op, (0, "a", 10), (50_000, "a", 20))
    out = [r for b in op.close() for r in b.to_pylist()]
    assert [(r["v"], r["w"]) for r in out] == [(1, 10), (2, 20)]


@pytest.mark.parametrize("flush_rows", [7, 1_000_000])
def test_state_is_dropped_at_close_and_bounded_by_the_open_windows(monkeypatch, flush_rows):
    monkeypatch.setattr(window_state, "FLUSH_ROWS", flush_rows)
    op = operator("FULL")
    tables = [side.tables["rows"] for side in op.sides]
    emitted, most = 0, 0
    for i in range(60):  # two batches of 10 rows per side per window
        start = (i // 2) * SIZE
        items = [(start, f"k{j % 5}", j) for j in range(10)]
        left(op, *items)
        right(op, *items)
        state = op.describe_state()
        assert list(state.values()) == [side.rows() for side in op.sides]
        most = max(most, state["join_left_rows"] + state["join_right_rows"])
        emitted += len(advance(op, start - 1))  # the previous window closes
    emitted += len(advance(op, MAX_WATERMARK))
    assert emitted == 30 * 5 * 4 * 4  # per window and key: 4 rows a side
    # At most one whole window (40 rows) and half of the next one.
    assert most == 60 and op.ctx.metrics.extra["join_state_rows_peak"] == 60
    assert op.describe_state() == {"join_left_rows": 0, "join_right_rows": 0}
    assert [op.ctx.state.row_count(t) for t in tables] == [0, 0]


def test_results_do_not_depend_on_when_the_buffer_moves_to_duckdb(monkeypatch):
    outs = []
    for flush_rows in (1, 3, 1_000_000):
        monkeypatch.setattr(window_state, "FLUSH_ROWS", flush_rows)
        op = operator("FULL", where="v <= w")
        for i in range(6):
            left(op, (SIZE * (i % 3), "ab"[i % 2], i))
            right(op, (SIZE * (i % 2), "abc"[i % 3], 5 - i))
        op.on_barrier(1)
        left(op, (0, "a", 0))
        outs.append(advance(op, MAX_WATERMARK))
    assert outs[0] == outs[1] == outs[2]
    assert len(outs[0]) > 6


# -- property: the same rows as a batch join -------------------------------------------------


def batch_join(kind: str, lrows: list[Row], rrows: list[Row]) -> Counter:
    """A nested-loop join of windowed rows (window start, key, v) on window and key, where
    ``v <= w``; NULL never equals or compares.
    """

    def win(start: int | None) -> tuple[int, int] | tuple[None, None]:
        return (None, None) if start is None else (start, start + SIZE)

    out: Counter = Counter()
    lhit, rhit = set(), set()
    for i, (ls, lk, v) in enumerate(lrows):
        for j, (rs, rk, w) in enumerate(rrows):
            keys = ls == rs and lk is not None and lk == rk
            if keys and v is not None and w is not None and v <= w:
                out[(*win(ls), lk, v, *win(rs), rk, w)] += 1
                lhit.add(i)
                rhit.add(j)
    if kind in ("LEFT", "FULL"):
        for i, (ls, lk, v) in enumerate(lrows):
            if i not in lhit:
                out[(*win(ls), lk, v, None, None, None, None)] += 1
    if kind in ("RIGHT", "FULL"):
        for j, (rs, rk, w) in enumerate(rrows):
            if j not in rhit:
                out[(None, None, None, None, *win(rs), rk, w)] += 1
    return out


def as_counter(rows: list[dict]) -> Counter:
    def ms(t: dt.datetime | None) -> int | None:
        return None if t is None else (t - _ms(0)) // dt.timedelta(milliseconds=1)

    names = ("window_start", "window_end", "k", "v", "window_start0", "window_end0", "k0", "w")
    return Counter(
        tuple(ms(v) if isinstance(v, dt.datetime) else v for v in (r[n] for n in names))
        for r in rows
    )


@functools.cache
def _shared() -> OperatorContext:
    return context()


def fresh_context() -> OperatorContext:
    """A new context on one shared DuckDB database (a connection takes ~20 ms to open);
    each operator replaces the state tables of the one before.
    """
    return dataclasses.replace(_shared(), metrics=OperatorMetrics(1, 0, "op"))


@contextlib.contextmanager
def limits(flush_rows: int, group_rows: int) -> Iterator[None]:
    """When the write buffer moves to DuckDB, and how many rows are joined at once."""
    old = window_state.FLUSH_ROWS, join_window.GROUP_ROWS
    window_state.FLUSH_ROWS, join_window.GROUP_ROWS = flush_rows, group_rows
    try:
        yield
    finally:
        window_state.FLUSH_ROWS, join_window.GROUP_ROWS = old


row = st.tuples(
    st.integers(0, 3), st.sampled_from(["a", "b", None]), st.one_of(st.none(), st.integers(0, 4))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(JOIN_KINDS),
    step=st.sampled_from([SIZE, SIZE // 2]),  # tumbling, or overlapping (HOP) windows
    events=st.lists(st.tuples(st.booleans(), row), max_size=40),
    cuts=st.lists(st.booleans(), min_size=40, max_size=40),
    flush_rows=st.sampled_from([2, 1_000_000]),
    group_rows=st.sampled_from([3, 1 << 20]),
)
def test_property_matches_a_batch_join(kind, step, events, cuts, flush_rows, group_rows):
    """Rows arrive in random order and batches; after each batch the watermark moves up
    to just before the earliest window still to get rows, so no row is late.
    """
    events = [(is_left, (w * step, k, v)) for is_left, (w, k, v) in events]
    outs = []
    for split in (cuts, [False] * len(cuts)):  # random batches; one batch per run
        op = operator(kind, where="v <= w", ctx=fresh_context())
        out: list[dict] = []
        run: list = []
        with limits(flush_rows, group_rows):
            for i, (is_left, item) in enumerate(events):
                run.append(item)
                last = i + 1 == len(events) or events[i + 1][0] != is_left
                if last or split[i]:
                    out += left(op, *run) if is_left else right(op, *run)
                    run = []
                    rest = [s for _, (s, _, _) in events[i + 1 :]]
                    wm = min(rest) + SIZE - 2 if rest else MAX_WATERMARK
                    if wm > op.ctx.watermark:
                        out += advance(op, wm)
            out += advance(op, MAX_WATERMARK)
        assert op.ctx.metrics.late_rows_dropped == 0
        outs.append(out)
    assert outs[0] == outs[1]  # the order does not depend on batch boundaries
    lrows = [item for is_left, item in events if is_left]
    rrows = [item for is_left, item in events if not is_left]
    assert as_counter(outs[0]) == batch_join(kind, lrows, rrows)
