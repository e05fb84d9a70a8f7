"""Two-phase window aggregation on small batches: the local phase's partial rows, and the
global phase merging them into what the one-phase operator gives, late rows included.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from streamsql.plan.local_window_agg import LocalWindowAggregate
from streamsql.plan.nodes import AggCall, WindowAggregate, WindowSpec
from streamsql.runtime.operators.window_agg import WindowAggOperator
from streamsql.runtime.operators.window_local import LocalWindowAggOperator
from streamsql.runtime.timeutil import MAX_WATERMARK
from tests.runtime.stubs import Input, advance, context, opened

TS = pa.timestamp("ms")
SCHEMA = pa.schema(
    [("ts", TS), ("k", pa.string()), ("v", pa.int64()), ("f", pa.bool_()), ("s", pa.string())]
)
TUMBLE = WindowSpec("TUMBLE", "ts", 10_000)
HOP = WindowSpec("HOP", "ts", 10_000, 5_000)

COUNT = AggCall("COUNT", None, "n", pa.int64())
AGGS = (
    COUNT,
    AggCall("COUNT", "v", "nonnull", pa.int64()),
    AggCall("SUM", "v", "total", pa.int64(), filter="f"),
    AggCall("AVG", "v", "avg", pa.int64()),
    AggCall("MIN", "s", "lo", pa.string()),
    AggCall("MAX", "ts", "last", TS),
    AggCall("COUNT", None, "flagged", pa.int64(), filter="f"),
)


def _ms(t: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)


def rows(*items: tuple[int, str | None, int | None, bool | None, str | None]) -> pa.RecordBatch:
    """(time in ms, key, value, flag, text) -> a batch."""
    cols = list(zip(*items, strict=True))
    return pa.record_batch(
        [pa.array(cols[0], pa.int64()).cast(TS), *(pa.array(c) for c in cols[1:])],
        schema=SCHEMA,
    )


def phases(window: WindowSpec = TUMBLE, aggs=AGGS, keys=("k",)):
    local = LocalWindowAggregate(Input(fixed=SCHEMA), window, keys, aggs, assigns=True)
    merge = WindowAggregate(
        Input(fixed=local.schema), window, keys, aggs, assigns=True, phase="global"
    )
    one = WindowAggregate(Input(fixed=SCHEMA), window, keys, aggs, assigns=True)
    return (
        opened(LocalWindowAggOperator(local)),
        opened(WindowAggOperator(merge)),
        opened(WindowAggOperator(one)),
    )


def local_rows(op: LocalWindowAggOperator, batch: pa.RecordBatch) -> list[dict]:
    return [r for out in op.process_batch(batch, 0) for r in out.to_pylist()]


def test_local_phase_emits_partials_per_window_and_key():
    local, _, _ = phases()
    out = local_rows(
        local,
        rows(
            (1_000, "a", 3, True, "x"),
            (2_000, "a", None, False, "b"),
            (3_000, "a", 5, None, None),
            (12_000, "a", 7, True, "z"),
            (4_000, None, 1, True, "y"),
        ),
    )
    first = {
        "k": "a",
        "count$0": 3,
        "count$1": 2,  # COUNT(v) counts values, not NULLs
        "sum$2": 3,  # FILTER (WHERE f): a NULL flag does not pass
        "sum$3": 8,
        "count$3": 2,
        "min$4": "b",
        "max$5": _ms(3_000),
        "count$6": 1,
        "$rows": 3,
        "$slice_end": _ms(10_000),
    }
    assert out[0] == first
    assert [(r["k"], r["$rows"], r["$slice_end"]) for r in out[1:]] == [
        ("a", 1, _ms(20_000)),
        (None, 1, _ms(10_000)),
    ]


def test_local_phase_never_drops_rows_as_late():
    local, _, _ = phases()
    local.ctx.watermark = 1_000_000  # its own input's watermark: not the one that decides
    assert len(local_rows(local, rows((1_000, "a", 1, True, "x")))) == 1
    assert local.ctx.metrics.late_rows_dropped == 0


def test_hop_partials_are_panes():
    local, _, _ = phases(HOP)
    out = local_rows(local, rows((1_000, "a", 1, True, "x"), (6_000, "a", 2, True, "x")))
    assert [r["$slice_end"] for r in out] == [_ms(5_000), _ms(10_000)]


def _run_both(window: WindowSpec, batches: list[pa.RecordBatch], marks: list[int], split: int):
    """The one-phase operator and the two phases (the local one fed by ``split`` instances,
    its batches dealt round-robin) on the same batches and watermarks.
    """
    locals_ = [phases(window)[0] for _ in range(split)]
    _, merge, one = phases(window)
    got, want = [], []
    for i, (batch, mark) in enumerate(zip(batches, marks, strict=True)):
        for out in locals_[i % split].process_batch(batch, 0):
            assert not list(merge.process_batch(out, 0))
        assert not list(one.process_batch(batch, 0))
        got += advance(merge, mark)
        want += advance(one, mark)
    got += advance(merge, MAX_WATERMARK)
    want += advance(one, MAX_WATERMARK)
    return got, want, merge, one


def _random_batches(seed: int, n: int = 400, size: int = 7):
    rng = np.random.default_rng(seed)
    ts = np.arange(n) * 150 - rng.integers(0, 1_900, n)
    late = rng.random(n) < 0.03
    ts[late] -= 30_000  # far behind the watermark: late
    items = [
        (
            int(t),
            [None, "a", "b", "c"][rng.integers(0, 4)],
            None if rng.random() < 0.1 else int(rng.integers(0, 100)),
            [None, True, False][rng.integers(0, 3)],
            None if rng.random() < 0.1 else "xyz"[rng.integers(0, 3)],
        )
        for t in ts
    ]
    batches = [rows(*items[i : i + size]) for i in range(0, n, size)]
    tops = np.maximum.accumulate(ts)[size - 1 :: size].tolist()
    marks = [int(t) - 2_000 for t in tops]
    marks += [marks[-1]] * (len(batches) - len(marks))
    return batches, marks


def _key(r: dict) -> tuple:
    return tuple((v is None, str(v)) for v in r.values())


@pytest.mark.parametrize("window", [TUMBLE, HOP], ids=["tumble", "hop"])
@pytest.mark.parametrize("split", [1, 3])
@pytest.mark.parametrize("seed", [1, 2])
def test_global_phase_gives_the_one_phase_answer_and_late_count(window, split, seed):
    batches, marks = _random_batches(seed)
    got, want, merge, one = _run_both(window, batches, marks, split)
    assert sorted(got, key=_key) == sorted(want, key=_key)
    assert len(want) > 10
    assert one.ctx.metrics.late_rows_dropped > 0
    assert merge.ctx.metrics.late_rows_dropped == one.ctx.metrics.late_rows_dropped


def test_a_late_partial_counts_the_rows_it_stands_for():
    local, merge, _ = phases()
    advance(merge, 15_000)
    (partial,) = local.process_batch(
        rows((1_000, "a", 1, True, "x"), (2_000, "a", 1, True, "x"), (3_000, "a", 1, True, "x")),
        0,
    )
    assert list(merge.process_batch(partial, 0)) == []
    assert merge.ctx.metrics.late_rows_dropped == 3
    assert merge.describe_state()["open_windows"] == 0


def test_global_phase_without_keys():
    aggs = (COUNT, AggCall("MAX", "s", "hi", pa.string()))
    local, merge, _ = phases(aggs=aggs, keys=())
    for batch in (rows((1_000, "a", 1, True, "x")), rows((2_000, "b", 1, True, "y"))):
        for out in local.process_batch(batch, 0):
            merge.process_batch(out, 0)
    assert advance(merge, MAX_WATERMARK) == [
        {
            "window_start": _ms(0),
            "window_end": _ms(10_000),
            "window_time": _ms(9_999),
            "n": 2,
            "hi": "y",
        }
    ]


def test_global_state_is_one_partials_table():
    ctx = context(instance=1)
    local = LocalWindowAggregate(Input(fixed=SCHEMA), TUMBLE, ("k",), (COUNT,), assigns=True)
    node = WindowAggregate(
        Input(fixed=local.schema), TUMBLE, ("k",), (COUNT,), assigns=True, phase="global"
    )
    assert node.state_tables() == ("partials",)
    op = opened(WindowAggOperator(node), ctx)
    assert op.windows.tables["partials"].endswith("_i1")
