import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from streamsql.plan.nodes import WindowSpec
from streamsql.runtime.operators.window_assign import assign_windows


def test_tumble_floors_to_the_window_and_handles_negative_times():
    rows, starts, ends = assign_windows(
        np.array([0, 999, 1000, -1, -1000]), WindowSpec("TUMBLE", "ts", 1000)
    )
    assert rows.tolist() == [0, 1, 2, 3, 4]
    assert starts.tolist() == [0, 0, 1000, -1000, -1000]
    assert ends.tolist() == [1000, 1000, 2000, 0, 0]


def test_tumble_offset_shifts_the_boundaries():
    _, starts, _ = assign_windows(np.array([100, 600]), WindowSpec("TUMBLE", "ts", 1000, 0, 500))
    assert starts.tolist() == [-500, 500]


def test_cumulate_windows_share_a_start_and_grow():
    rows, starts, ends = assign_windows(np.array([1500]), WindowSpec("CUMULATE", "ts", 3000, 1000))
    assert rows.tolist() == [0, 0]
    assert starts.tolist() == [0, 0]
    assert sorted(ends.tolist()) == [2000, 3000]


@given(
    times=st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=50),
    slide=st.integers(1, 50).map(lambda x: x * 100),
    factor=st.integers(1, 6),
)
def test_hop_row_is_in_exactly_size_over_slide_windows_that_contain_it(times, slide, factor):
    spec = WindowSpec("HOP", "ts", slide * factor, slide)
    t = np.array(times, dtype=np.int64)
    rows, starts, ends = assign_windows(t, spec)
    assert np.bincount(rows, minlength=len(t)).tolist() == [factor] * len(t)
    assert np.all(starts <= t[rows]) and np.all(t[rows] < ends)
    assert np.all(np.mod(starts, slide) == 0)
    assert np.all(ends - starts == slide * factor)


@given(
    times=st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=50),
    step=st.integers(1, 50).map(lambda x: x * 100),
    factor=st.integers(1, 6),
)
def test_cumulate_windows_are_every_step_end_after_the_row(times, step, factor):
    spec = WindowSpec("CUMULATE", "ts", step * factor, step)
    t = np.array(times, dtype=np.int64)
    rows, starts, ends = assign_windows(t, spec)
    for i, ts in enumerate(times):
        base = ts - (ts % (step * factor))
        expected = {base + j * step for j in range(1, factor + 1) if base + j * step > ts}
        assert set(ends[rows == i].tolist()) == expected
        assert set(starts[rows == i].tolist()) == {base}


def test_operator_adds_window_columns():
    from streamsql.plan.nodes import Scan, WindowTVF  # noqa: F401 - schema only

    batch = pa.record_batch({"ts": pa.array([1500, 2500], pa.timestamp("ms"))})
    _, starts, ends = assign_windows(
        batch.column(0).cast(pa.int64()).to_numpy(), WindowSpec("TUMBLE", "ts", 1000)
    )
    assert starts.tolist() == [1000, 2000] and ends.tolist() == [2000, 3000]
