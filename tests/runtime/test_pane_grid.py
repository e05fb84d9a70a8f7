"""HOP windows on the pane grid equal a plain per-window combination of the panes, with
several partial rows per (pane, key), NULL partials and NULL keys.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from streamsql.runtime.operators.pane_grid import slide_panes

SLIDE, SIZE = 2, 10  # five panes per window


def partials(seed: int, n: int = 300, keys: int = 6) -> pa.Table:
    rng = np.random.default_rng(seed)
    key = rng.integers(0, keys, n).astype(object)
    key[rng.random(n) < 0.1] = None
    total = rng.integers(-50, 50, n).astype(object)
    total[rng.random(n) < 0.2] = None
    return pa.table(
        {
            "we": pa.array(2 + SLIDE * rng.integers(0, 20, n), pa.int64()),  # pane ends
            "k0": pa.array(list(key), pa.int64()),
            "__n": pa.array(rng.integers(1, 4, n), pa.int64()),
            "p0": pa.array(list(total), pa.int64()),
            "p1": pa.array(rng.random(n) * 10, pa.float64()),
        }
    )


def expected(table: pa.Table, first: int, last: int) -> dict:
    """(window end, key) -> (rows, sum p0 or None, max p1), by looping over the panes."""
    out: dict = defaultdict(lambda: [0, None, None])
    for row in table.to_pylist():
        for end in range(first, last + 1, SLIDE):
            if end - SIZE < row["we"] <= end:
                acc = out[(end, row["k0"])]
                acc[0] += row["__n"]
                if row["p0"] is not None:
                    acc[1] = row["p0"] + (acc[1] or 0)
                acc[2] = row["p1"] if acc[2] is None else max(acc[2], row["p1"])
    return {k: tuple(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("first", "last"), [(10, 10), (10, 30), (16, 40)])
def test_the_grid_combines_each_windows_panes(seed, first, last):
    table = partials(seed)
    table = table.filter(
        pa.array([first - SIZE < w <= last for w in table.column("we").to_pylist()])
    )
    specs = [("__n", "sum"), ("p0", "sum"), ("p1", "max")]
    got = slide_panes(table, ["k0"], specs, (first, last, SLIDE, SIZE))
    assert got is not None
    rows = {(r["we"], r["k0"]): (r["__n_sum"], r["p0_sum"], r["p1_max"]) for r in got.to_pylist()}
    assert rows.keys() == expected(table, first, last).keys()
    for key, (n, total, top) in expected(table, first, last).items():
        assert rows[key][:2] == (n, total)
        assert rows[key][2] == pytest.approx(top)


def test_sparse_keys_and_several_key_columns_are_left_to_the_group_by():
    sparse = pa.table(
        {
            "we": pa.array(np.arange(0, 400, 2) + 2, pa.int64()),
            "k0": pa.array(np.arange(200), pa.int64()),  # every key in one pane only
            "__n": pa.array(np.ones(200, np.int64)),
        }
    )
    assert slide_panes(sparse, ["k0"], [("__n", "sum")], (10, 400, SLIDE, SIZE)) is None
    two = partials(0).append_column("k1", pa.array(np.zeros(300, np.int64)))
    assert slide_panes(two, ["k0", "k1"], [("__n", "sum")], (10, 30, SLIDE, SIZE)) is None
    strings = partials(0).append_column("s", pa.array(["x"] * 300))
    assert slide_panes(strings, ["k0"], [("s", "max")], (10, 30, SLIDE, SIZE)) is None
