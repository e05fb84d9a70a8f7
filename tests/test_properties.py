"""Property tests: disorder within the watermark delay, batch boundaries and parallelism
never change a window's result; later rows are dropped exactly as the watermark rule says.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamsql

DELAY = 2000
SIZE = 5000
QUERY = (
    "SELECT window_start, k, COUNT(*) AS n, SUM(v) AS s FROM TABLE(TUMBLE(TABLE ev, "
    "DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, k"
)

events = st.lists(
    st.tuples(st.integers(0, 3), st.integers(-50, 50), st.integers(0, 1500)),
    min_size=1,
    max_size=60,
)


def _run(rows: list[tuple[int, int, int]], batch_size: int, parallelism: int, query: str = QUERY):
    """Run ``query`` over rows (k, v, ts ms) in this arrival order; (result, late count).
    Result rows are (window_start in epoch ms, k, n, s), sorted.
    """
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ev.parquet"
        table = pa.table(
            {
                "k": pa.array([r[0] for r in rows], pa.int64()),
                "v": pa.array([r[1] for r in rows], pa.int64()),
                "ts": pa.array([r[2] for r in rows], pa.int64()).cast(pa.timestamp("ms")),
            }
        )
        pq.write_table(table, path)
        s = streamsql.connect(
            settings={
                "execution.batch-size": str(batch_size),
                "parallelism.default": str(parallelism),
            }
        )
        s.execute(
            "CREATE TABLE ev (k BIGINT, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - "
            f"INTERVAL '2' SECOND) WITH ('connector' = 'filesystem', 'path' = '{path}', "
            "'format' = 'parquet')"
        )
        handle = s.sql(query)
        out = handle.to_arrow()
    result = sorted((_ms(r["window_start"]), r["k"], r["n"], r["s"]) for r in out.to_pylist())
    return result, handle.result.late_rows_dropped


def _ms(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def _reference(rows, batch_size: int):
    """The watermark rule, row by row: a row is late when its window's last millisecond
    is at or below the watermark left by the batches before it.
    """
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    watermark, late = None, 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        for k, v, ts in chunk:
            window = ts - ts % SIZE
            if watermark is not None and window + SIZE - 1 <= watermark:
                late += 1
                continue
            groups[(window, k)].append(v)
        top = max(ts for _, _, ts in chunk) - DELAY
        watermark = top if watermark is None else max(watermark, top)
    result = sorted((w, k, len(vs), sum(vs)) for (w, k), vs in groups.items())
    return result, late


def _timeline(gaps: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Turn (k, v, gap) into (k, v, ts) with increasing timestamps."""
    out, t = [], 0
    for k, v, gap in gaps:
        t += gap
        out.append((k, v, t))
    return out


def _within_delay(ordered: list[tuple], jitter: list[int]) -> list[tuple]:
    """``ordered`` in arrival order by ts + jitter: a row arrives before any row more than
    DELAY - 1 ms younger, so every row is within the delay of everything seen before it.
    """
    arrival = [r[2] + j for r, j in zip(ordered, jitter[: len(ordered)], strict=True)]
    return [r for _, r in sorted(zip(arrival, ordered, strict=True), key=lambda p: p[0])]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=events,
    jitter=st.lists(st.integers(0, DELAY - 1), min_size=60, max_size=60),
    batch_size=st.sampled_from([1, 2, 3, 7, 1000]),
    parallelism=st.sampled_from([1, 2, 3]),
)
def test_shuffling_within_the_delay_never_changes_a_window(data, jitter, batch_size, parallelism):
    ordered = _timeline(data)
    shuffled = _within_delay(ordered, jitter)
    expected, late = _reference(ordered, len(ordered))
    assert late == 0
    got, dropped = _run(shuffled, batch_size, parallelism)
    assert dropped == 0
    assert got == expected


#: Times that often sit right at a window's edge or at edge + delay, where off-by-one
#: mistakes in the lateness rule would show.
edgy_times = st.one_of(
    st.integers(0, 30_000),
    st.builds(
        lambda window, offset: window * SIZE + offset,
        st.integers(0, 5),
        st.sampled_from([0, 1, DELAY - 1, DELAY, DELAY + 1, SIZE - 2, SIZE - 1]),
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(st.integers(0, 3), st.integers(-50, 50), edgy_times), max_size=50
    ).filter(bool),
    batch_size=st.sampled_from([1, 2, 5, 1000]),
    parallelism=st.sampled_from([1, 2]),
)
def test_late_rows_follow_the_watermark_rule(data, batch_size, parallelism):
    """Arbitrary disorder: what is dropped, and what is counted, is exactly what the rule
    predicts for this batching.
    """
    got, dropped = _run(data, batch_size, parallelism)
    expected, late = _reference(data, batch_size)
    assert (got, dropped) == (expected, late)


GAP = 1500
SESSIONS = (
    "SELECT window_start, k, COUNT(*) AS n, SUM(v) AS s FROM TABLE(SESSION(TABLE ev "
    "PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1500' MILLISECOND)) "
    "GROUP BY window_start, window_end, k"
)


def _session_reference(rows, batch_size: int):
    """Sessions as the watermark rule makes them, batch by batch: a batch's rows merge with
    the open sessions of their key (intervals [ts, ts + GAP) that overlap or touch); a
    merged session that ends at or before the watermark + 1 before the batch is late, with
    all its rows; sessions close when the watermark reaches their last millisecond.
    """
    open_: dict[int, list[list[int]]] = defaultdict(list)  # k -> [start, end, n, s]
    out, watermark, late = [], None, 0
    for begin in range(0, len(rows), batch_size):
        chunk = rows[begin : begin + batch_size]
        for k in {r[0] for r in chunk}:
            pieces = [[*s, False] for s in open_[k]]
            pieces += [[ts, ts + GAP, 1, v, True] for kk, v, ts in chunk if kk == k]
            pieces.sort(key=lambda p: p[0])
            merged: list[list] = []
            for p in pieces:
                if merged and p[0] <= merged[-1][1]:
                    m = merged[-1]
                    m[1] = max(m[1], p[1])
                    m[2] += p[2]
                    m[3] += p[3]
                    m[4] = m[4] and p[4]
                else:
                    merged.append(list(p))
            kept = []
            for m in merged:
                if watermark is not None and m[1] <= watermark + 1:
                    assert m[4], "an open session cannot have closed"
                    late += m[2]
                else:
                    kept.append(m[:4])
            open_[k] = kept
        top = max(ts for _, _, ts in chunk) - DELAY
        watermark = top if watermark is None else max(watermark, top)
        for k, sessions in open_.items():
            out += [(m[0], k, m[2], m[3]) for m in sessions if m[1] <= watermark + 1]
            open_[k] = [m for m in sessions if m[1] > watermark + 1]
    out += [(m[0], k, m[2], m[3]) for k, ss in open_.items() for m in ss]
    return sorted(out), late


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=events,
    jitter=st.lists(st.integers(0, DELAY - 1), min_size=60, max_size=60),
    batch_size=st.sampled_from([1, 2, 3, 7, 1000]),
    parallelism=st.sampled_from([1, 2, 3]),
)
def test_shuffling_within_the_delay_never_changes_a_session(data, jitter, batch_size, parallelism):
    ordered = _timeline(data)
    shuffled = _within_delay(ordered, jitter)
    expected, late = _session_reference(ordered, len(ordered))
    assert late == 0
    got, dropped = _run(shuffled, batch_size, parallelism, SESSIONS)
    assert dropped == 0
    assert got == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(st.integers(0, 3), st.integers(-50, 50), edgy_times), max_size=50
    ).filter(bool),
    batch_size=st.sampled_from([1, 2, 5, 1000]),
    parallelism=st.sampled_from([1, 2]),
)
def test_late_rows_miss_sessions_as_the_watermark_rule_says(data, batch_size, parallelism):
    got, dropped = _run(data, batch_size, parallelism, SESSIONS)
    assert (got, dropped) == _session_reference(data, batch_size)
