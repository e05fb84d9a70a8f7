"""The live table's rows: the changes so far applied, refresh after refresh."""

from __future__ import annotations

import pyarrow as pa

from streamsql.shell.results import _Materialized

SCHEMA = pa.schema([("_op", pa.int8()), ("k", pa.int64()), ("n", pa.int64())])


def changes(*rows: tuple[int, int, int]) -> pa.RecordBatch:
    ops, ks, ns = zip(*rows, strict=True)
    return pa.record_batch([pa.array(ops, pa.int8()), ks, ns], schema=SCHEMA)


def test_updates_replace_rows_across_refreshes() -> None:
    view = _Materialized(SCHEMA)
    view.add(changes((0, 1, 1), (0, 2, 1)))
    assert view.apply().to_pylist() == [{"k": 1, "n": 1}, {"k": 2, "n": 1}]
    view.add(changes((1, 1, 1), (2, 1, 2)))  # -U, +U: key 1 counted again
    view.add(changes((3, 2, 1)))  # -D: key 2 gone
    assert view.apply().to_pylist() == [{"k": 1, "n": 2}]
    assert view.changes == 5


def test_an_append_only_result_keeps_every_row() -> None:
    schema = pa.schema([("k", pa.int64())])
    view = _Materialized(schema)
    view.add(pa.record_batch([pa.array([1, 2])], schema=schema))
    view.apply()
    view.add(pa.record_batch([pa.array([3])], schema=schema))
    assert view.apply().column("k").to_pylist() == [1, 2, 3]
