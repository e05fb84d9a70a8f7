"""The event-time temporal join operator: which version a row joins, deletes, late rows,
the order rows go out in, state cleanup, and a property test against a reference.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsql import duck
from streamsql.parser.dialect import Flink
from streamsql.plan.changelog import DELETE, INSERT, UPDATE_AFTER, UPDATE_BEFORE
from streamsql.plan.join_nodes import Join, TemporalJoin
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators.base import OperatorContext
from streamsql.runtime.operators.join_temporal import TemporalJoinOperator
from streamsql.runtime.timeutil import MAX_WATERMARK
from streamsql.state import StateStore
from tests.runtime.stubs import Input, advance, opened

_SHARED = StateStore(duck.connect(), prefix="shared_")  # a connection costs ~20 ms

TS = pa.timestamp("ms")
ORDERS = pa.schema([("id", pa.int64()), ("cur", pa.string()), ("ts", TS)])
RATES = pa.schema([("c", pa.string()), ("rate", pa.int64()), ("vt", TS)])
OPS = {"+I": INSERT, "-U": UPDATE_BEFORE, "+U": UPDATE_AFTER, "-D": DELETE}


def operator(
    kind: str = "LEFT", where: str | None = None, ctx: OperatorContext | None = None
) -> TemporalJoinOperator:
    condition = sqlglot.parse_one(f"SELECT {where}", read=Flink).expressions[0] if where else None
    node = Join(
        Input(fixed=ORDERS, rowtime="ts"),
        Input(fixed=RATES, rowtime="vt"),
        kind,
        ("cur",),
        ("c",),
        condition=condition,
        strategy=TemporalJoin("ts", "vt"),
    )
    return opened(TemporalJoinOperator(node), ctx)


def orders(op: TemporalJoinOperator, *rows: tuple) -> None:
    batch = pa.RecordBatch.from_pylist(
        [dict(zip(ORDERS.names, r, strict=True)) for r in rows], ORDERS
    )
    assert list(op.process_batch(batch, 0)) == []


def rates(op: TemporalJoinOperator, *rows: tuple) -> None:
    """Versions (currency, rate, time), or with a leading row kind ('-D', 'EUR', 0, 5)."""
    kinds = [OPS[r[0]] if len(r) == 4 else INSERT for r in rows]
    updating = any(len(r) == 4 for r in rows)
    rows = tuple(r[1:] if len(r) == 4 else r for r in rows)
    batch = pa.RecordBatch.from_pylist(
        [dict(zip(RATES.names, r, strict=True)) for r in rows], RATES
    )
    if updating:
        batch = batch.append_column("_op", pa.array(kinds, pa.int8()))
    assert list(op.process_batch(batch, 1)) == []


def out(op: TemporalJoinOperator, watermark: int) -> list[tuple]:
    """(order id, rate) of the rows the watermark releases."""
    return [(r["id"], r["rate"]) for r in advance(op, watermark)]


def test_joins_the_latest_version_at_or_before_the_row() -> None:
    op = operator()
    rates(op, ("EUR", 1, 5), ("EUR", 2, 10), ("EUR", 3, 15))
    orders(op, (1, "EUR", 4), (2, "EUR", 5), (3, "EUR", 12), (4, "EUR", 10), (5, "EUR", 99))
    assert out(op, 20) == [(1, None), (2, 1), (4, 2), (3, 2)]
    assert out(op, MAX_WATERMARK) == [(5, 3)]


def test_output_has_both_sides_columns() -> None:
    op = operator("INNER")
    rates(op, ("EUR", 7, 5))
    orders(op, (1, "EUR", 6))
    [row] = advance(op, 6)
    assert row == {"id": 1, "cur": "EUR", "ts": row["ts"], "c": "EUR", "rate": 7, "vt": row["vt"]}
    assert row["ts"].second == 0 and row["ts"].microsecond == 6000
    assert row["vt"].microsecond == 5000


def test_a_version_arriving_after_the_row_counts_until_the_watermark_passes_it() -> None:
    op = operator()
    rates(op, ("EUR", 1, 0))
    orders(op, (1, "EUR", 10), (2, "EUR", 20))
    assert out(op, 5) == []
    rates(op, ("EUR", 2, 9), ("EUR", 3, 11))  # 9 counts for row 1; 11 does not
    assert out(op, 10) == [(1, 2)]
    rates(op, ("EUR", 4, 19))
    assert out(op, 30) == [(2, 4)]


def test_a_later_arrival_wins_a_tie_on_time() -> None:
    op = operator()
    rates(op, ("EUR", 1, 5))
    rates(op, ("EUR", 2, 5), ("USD", 8, 5))
    orders(op, (1, "EUR", 5))
    assert out(op, 5) == [(1, 2)]


def test_deletes_and_updates_of_versions() -> None:
    op = operator()
    rates(op, ("+I", "EUR", 1, 0), ("-D", "EUR", 1, 10), ("+I", "EUR", 3, 20))
    rates(op, ("-U", "EUR", 3, 30), ("+U", "EUR", 4, 30))
    orders(op, (1, "EUR", 9), (2, "EUR", 10), (3, "EUR", 19), (4, "EUR", 20), (5, "EUR", 30))
    assert out(op, 40) == [(1, 1), (2, None), (3, None), (4, 3), (5, 4)]


def test_inner_join_drops_rows_without_a_version() -> None:
    op = operator("INNER")
    rates(op, ("EUR", 1, 5), ("-D", "USD", 1, 0))
    orders(op, (1, "EUR", 4), (2, "EUR", 6), (3, "GBP", 6), (4, "USD", 6))
    assert out(op, 10) == [(2, 1)]


def test_null_keys_never_match() -> None:
    op = operator()
    rates(op, (None, 1, 0), ("EUR", 2, 0))
    orders(op, (1, None, 5), (2, "EUR", 5))
    assert out(op, 5) == [(1, None), (2, 2)]
    assert op.describe_state()["temporal_versions"] == 1  # the NULL-keyed one is not kept


@pytest.mark.parametrize(("kind", "expected"), [("INNER", [(2, 5)]), ("LEFT", [(1, None), (2, 5)])])
def test_residual_is_checked_on_the_chosen_version(kind: str, expected: list) -> None:
    op = operator(kind, where="rate > id * 2")
    rates(op, ("EUR", 10, 0), ("EUR", 1, 3), ("EUR", 5, 4))  # row 1 sees only rate 1
    orders(op, (1, "EUR", 3), (2, "EUR", 4))
    assert out(op, 10) == [(r[0], r[1]) for r in expected]


def test_rows_go_out_in_time_order_then_arrival_order() -> None:
    op = operator()
    orders(op, (1, "A", 7), (2, "B", 3))
    orders(op, (3, "C", 7), (4, "D", 1), (5, "E", 3))
    assert [i for i, _ in out(op, 7)] == [4, 2, 5, 1, 3]


def test_late_rows_are_dropped_and_counted() -> None:
    op = operator()
    assert out(op, 10) == []
    orders(op, (1, "EUR", 10), (2, "EUR", 11), (3, "EUR", 3))
    assert op.ctx.metrics.late_rows_dropped == 2
    assert out(op, 20) == [(2, None)]


def test_state_keeps_only_versions_that_can_still_be_chosen() -> None:
    op = operator()
    rates(op, ("EUR", 1, 0), ("EUR", 2, 5), ("EUR", 3, 15), ("USD", 1, 1), ("USD", 2, 1))
    orders(op, (1, "EUR", 12), (2, "USD", 30))
    assert op.describe_state() == {"temporal_left_rows": 2, "temporal_versions": 5}
    assert out(op, 10) == []
    # EUR@5 replaces EUR@0; the later USD@1 replaces the first; EUR@15 is in the future
    assert op.describe_state() == {"temporal_left_rows": 2, "temporal_versions": 3}
    assert out(op, 20) == [(1, 2)]
    assert op.describe_state() == {"temporal_left_rows": 1, "temporal_versions": 2}
    rates(op, ("EUR", 4, 12))  # arrives late: older than the kept EUR@15, so never chosen
    assert out(op, 21) == []
    assert op.describe_state() == {"temporal_left_rows": 1, "temporal_versions": 2}
    assert op.ctx.metrics.extra["join_state_rows_peak"] == 7


def test_checkpoint_writes_the_state_tables() -> None:
    op = operator()
    rates(op, ("EUR", 1, 0))
    orders(op, (1, "EUR", 5), (2, "EUR", 6))
    op.on_barrier(1)
    left, versions = op.tables
    assert op.ctx.state.row_count(left) == 2
    assert op.ctx.state.row_count(versions) == 1


def test_close_releases_what_is_left() -> None:
    op = operator()
    rates(op, ("EUR", 1, 0))
    orders(op, (1, "EUR", 5))
    assert [r["id"] for b in op.close() for r in b.to_pylist()] == [1]
    assert op.describe_state()["temporal_left_rows"] == 0


def test_keys_of_different_types() -> None:
    left = pa.schema([("id", pa.int64()), ("k", pa.int16()), ("s", pa.string()), ("ts", TS)])
    right = pa.schema([("rk", pa.int64()), ("rs", pa.string()), ("v", pa.int64()), ("vt", TS)])
    node = Join(
        Input(fixed=left, rowtime="ts"),
        Input(fixed=right, rowtime="vt"),
        "LEFT",
        ("k", "s"),
        ("rk", "rs"),
        strategy=TemporalJoin("ts", "vt"),
    )
    op = opened(TemporalJoinOperator(node))
    op.process_batch(
        pa.RecordBatch.from_pylist(
            [
                {"rk": 1, "rs": "a", "v": 10, "vt": 0},
                {"rk": 1, "rs": "b", "v": 20, "vt": 0},
                {"rk": 2, "rs": "a", "v": 30, "vt": 0},
            ],
            right,
        ),
        1,
    )
    op.process_batch(
        pa.RecordBatch.from_pylist(
            [
                {"id": 1, "k": 1, "s": "b", "ts": 1},
                {"id": 2, "k": 2, "s": "a", "ts": 2},
                {"id": 3, "k": 2, "s": "b", "ts": 3},
                {"id": 4, "k": None, "s": "a", "ts": 4},
            ],
            left,
        ),
        0,
    )
    assert [(r["id"], r["v"]) for r in advance(op, 10)] == [(1, 20), (2, 30), (3, None), (4, None)]


# -- property: random versions and probes in random batches ------------------------------

_event = st.one_of(
    st.tuples(
        st.just("left"), st.lists(st.tuples(st.sampled_from("AB"), st.integers(0, 15)), max_size=4)
    ),
    st.tuples(
        st.just("right"),
        st.lists(
            st.tuples(
                st.sampled_from(["+I", "+I", "-D", "-U", "+U"]),
                st.sampled_from("AB"),
                st.integers(0, 15),
            ),
            max_size=4,
        ),
    ),
    st.tuples(st.just("watermark"), st.integers(1, 4)),  # how far the watermark moves
)


def _reference(events: list, kind: str) -> list[tuple]:
    """Release left rows at each watermark, in (time, arrival) order, against every version
    received so far: the latest by (time, arrival) at or before the row's time, unless a
    retraction.
    """
    versions: list[tuple] = []  # (key, time, arrival, rate or None)
    pending: list[tuple] = []  # (time, arrival, id, key)
    watermark, arrival, result = -1, 0, []

    def release(upto: int) -> None:
        nonlocal pending
        due = sorted(p for p in pending if p[0] <= upto)
        pending = [p for p in pending if p[0] > upto]
        for t, _, ident, key in due:
            candidates = [v for v in versions if v[0] == key and v[1] <= t]
            rate = max(candidates, key=lambda v: (v[1], v[2]))[3] if candidates else None
            if rate is not None or kind == "LEFT":
                result.append((ident, rate))

    for what, payload in events:
        if what == "left":
            for key, t in payload:
                arrival += 1
                if t > watermark:
                    pending.append((t, arrival, arrival, key))
        elif what == "right":
            for op, key, t in payload:
                arrival += 1
                versions.append((key, t, arrival, arrival if op in ("+I", "+U") else None))
        else:
            watermark = max(watermark, 0) + payload
            release(watermark)
    release(MAX_WATERMARK)
    return result


@settings(max_examples=150, deadline=None)
@given(events=st.lists(_event, max_size=16), kind=st.sampled_from(["INNER", "LEFT"]))
def test_matches_a_reference(events: list, kind: str) -> None:
    ctx = OperatorContext(1, 0, 0, 1, _SHARED, OperatorMetrics(1, 0, "op"))
    op = operator(kind, ctx=ctx)
    arrival, watermark, got = 0, -1, []
    for what, payload in events:
        if what == "left":
            ids = range(arrival + 1, arrival + 1 + len(payload))
            orders(op, *[(i, key, t) for i, (key, t) in zip(ids, payload, strict=True)])
        elif what == "right":
            ids = range(arrival + 1, arrival + 1 + len(payload))
            rows = [(o, key, i, t) for i, (o, key, t) in zip(ids, payload, strict=True)]
            rates(op, *rows)
        else:
            watermark = max(watermark, 0) + payload
            got += out(op, watermark)
        arrival += len(payload) if what != "watermark" else 0
    got += out(op, MAX_WATERMARK)
    assert got == _reference(events, kind)
