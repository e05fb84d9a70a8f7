"""Changelog helpers: the final table of a changelog, and the consistency checker."""

from __future__ import annotations

import pyarrow as pa
import pytest

from streamsql.changelog import final_table, last_per_key
from streamsql.errors import ExecError
from tests.changelog_check import check_changelog


def log(rows, ops):
    return pa.table(
        {
            "k": pa.array([r[0] for r in rows], pa.string()),
            "n": pa.array([r[1] for r in rows], pa.int64()),
            "_op": pa.array(ops, pa.int8()),
        }
    )


def test_final_table_applies_updates_and_deletes():
    changes = log([("a", 1), ("b", 1), ("a", 1), ("a", 2), ("b", 1)], [0, 0, 1, 2, 3])
    assert final_table(changes).to_pylist() == [{"k": "a", "n": 2}]


def test_final_table_keeps_duplicates_and_first_seen_order():
    changes = log([("x", 1), ("y", 1), ("x", 1)], [0, 0, 0])
    # Equal rows come together, in the order their first copy arrived.
    assert final_table(changes).column("k").to_pylist() == ["x", "x", "y"]


def test_final_table_refuses_an_inconsistent_changelog():
    with pytest.raises(ExecError, match="never added"):
        final_table(log([("a", 1)], [3]))


def test_append_only_tables_pass_through():
    table = pa.table({"k": ["a"]})
    assert final_table(table) is table


def test_last_per_key_groups_nulls_together():
    batch = pa.record_batch({"k": pa.array([None, "a", None], pa.string())})
    assert last_per_key(batch, ["k"]).to_pylist() == [1, 2]


def test_the_checker_catches_a_retraction_of_a_missing_row():
    bad = log([("a", 1), ("a", 2)], [0, 1]).to_batches()
    with pytest.raises(AssertionError, match="not there"):
        check_changelog(bad)


def test_the_checker_catches_two_rows_for_one_upsert_key():
    bad = log([("a", 1), ("a", 2)], [0, 2]).to_batches()
    with pytest.raises(AssertionError, match="two live rows"):
        check_changelog(bad, upsert_keys=("k",))
    good = log([("a", 1), ("a", 1), ("a", 2)], [0, 1, 2]).to_batches()
    assert list(check_changelog(good, upsert_keys=("k",)).elements()) == [(("k", "a"), ("n", 2))]
