"""The unbounded aggregate operator on small changelogs."""

from __future__ import annotations

import pyarrow as pa

from streamsql.plan.changelog import RETRACT, Changelog
from streamsql.plan.nodes import AggCall, Aggregate
from streamsql.runtime.operators.aggregate import AggregateOperator
from tests.runtime.stubs import Input, context, opened

KINDS = {0: "+I", 1: "-U", 2: "+U", 3: "-D"}


def opened_now(op: AggregateOperator) -> AggregateOperator:
    """The operator applying every batch at once (no mini-batch)."""
    return opened(op, context(**{"table.exec.mini-batch.enabled": "false"}))


class ChangingInput(Input):
    @property
    def mode(self) -> Changelog:
        return RETRACT


def node(*aggs: AggCall, keys=("k",), updating=True) -> Aggregate:
    schema = pa.schema([("k", pa.string()), ("v", pa.int64()), ("f", pa.bool_())])
    source = ChangingInput(fixed=schema) if updating else Input(fixed=schema)
    return Aggregate(source, keys, aggs)


def changes(*rows) -> pa.RecordBatch:
    """rows: (kind, key, value[, flag])"""
    ops = {"+I": 0, "-U": 1, "+U": 2, "-D": 3}
    return pa.record_batch(
        {
            "k": pa.array([r[1] for r in rows], pa.string()),
            "v": pa.array([r[2] for r in rows], pa.int64()),
            "f": [r[3] if len(r) > 3 else True for r in rows],
            "_op": pa.array([ops[r[0]] for r in rows], pa.int8()),
        }
    )


def run(op, batch) -> list[tuple]:
    out = []
    for b in op.process_batch(batch, 0):
        for row in b.to_pylist():
            kind = KINDS[row.pop("_op")]
            out.append((kind, *row.values()))
    return out


def test_max_after_the_current_maximum_is_retracted():
    op = opened_now(
        AggregateOperator(
            node(AggCall("MAX", "v", "m", pa.int64()), AggCall("MIN", "v", "lo", pa.int64()))
        )
    )
    assert run(op, changes(("+I", "a", 5), ("+I", "a", 9), ("+I", "a", 7))) == [("+I", "a", 9, 5)]
    assert run(op, changes(("-D", "a", 9))) == [("-U", "a", 9, 5), ("+U", "a", 7, 5)]
    assert run(op, changes(("-D", "a", 5))) == [("-U", "a", 7, 5), ("+U", "a", 7, 7)]


def test_count_distinct_forgets_a_value_only_with_its_last_copy():
    op = opened_now(AggregateOperator(node(AggCall("COUNT", "v", "d", pa.int64(), distinct=True))))
    run(op, changes(("+I", "a", 1), ("+I", "a", 1), ("+I", "a", 2)))
    assert run(op, changes(("-D", "a", 1))) == []  # one copy of 1 is left: still 2 values
    assert run(op, changes(("-D", "a", 1))) == [("-U", "a", 2), ("+U", "a", 1)]


def test_a_group_that_empties_is_deleted_and_can_come_back():
    op = opened_now(
        AggregateOperator(
            node(AggCall("COUNT", None, "n", pa.int64()), AggCall("SUM", "v", "s", pa.int64()))
        )
    )
    run(op, changes(("+I", "a", 3)))
    assert run(op, changes(("-D", "a", 3))) == [("-D", "a", 1, 3)]
    assert op.describe_state()["aggregate_groups"] == 0
    assert run(op, changes(("+I", "a", 4))) == [("+I", "a", 1, 4)]


def test_unchanged_results_are_not_emitted_and_pairs_cancel_in_a_batch():
    op = opened_now(AggregateOperator(node(AggCall("MAX", "v", "m", pa.int64()))))
    run(op, changes(("+I", "a", 5)))
    assert run(op, changes(("+I", "a", 3))) == []
    assert run(op, changes(("+I", "b", 1), ("-D", "b", 1))) == []


def test_null_keys_and_filter_with_retractions():
    op = opened_now(
        AggregateOperator(
            node(
                AggCall("COUNT", None, "n", pa.int64(), filter="f"),
                AggCall("SUM", "v", "s", pa.int64()),
            )
        )
    )
    out = run(op, changes(("+I", None, 1, True), ("+I", None, 2, False), ("+I", "a", 4, True)))
    assert sorted(out, key=str) == sorted([("+I", None, 1, 3), ("+I", "a", 1, 4)], key=str)
    assert run(op, changes(("-D", None, 1, True))) == [("-U", None, 1, 3), ("+U", None, 0, 2)]


def test_sum_becomes_null_when_its_last_value_goes():
    op = opened_now(
        AggregateOperator(
            node(AggCall("SUM", "v", "s", pa.int64()), AggCall("COUNT", None, "n", pa.int64()))
        )
    )
    run(op, changes(("+I", "a", 5), ("+I", "a", None)))
    assert run(op, changes(("-D", "a", 5))) == [("-U", "a", 5, 2), ("+U", "a", None, 1)]


def test_global_aggregate_over_inserts():
    op = opened_now(
        AggregateOperator(node(AggCall("COUNT", None, "n", pa.int64()), keys=(), updating=False))
    )
    batch = pa.record_batch({"k": ["x", "y"], "v": [1, 2], "f": [True, True]})
    assert run(op, batch) == [("+I", 2)]
    assert run(op, batch) == [("-U", 2), ("+U", 4)]


def test_a_mini_batch_waits_for_flush_and_applies_everything_at_once():
    op = opened(AggregateOperator(node(AggCall("COUNT", None, "n", pa.int64()))))
    assert run(op, changes(("+I", "a", 1))) == []
    assert run(op, changes(("+I", "a", 2))) == []
    out = [(KINDS[r.pop("_op")], *r.values()) for b in op.flush() for r in b.to_pylist()]
    assert out == [("+I", "a", 2)]  # one change for the whole mini-batch
    assert list(op.flush()) == []


def test_a_full_mini_batch_applies_without_waiting():
    op = opened(
        AggregateOperator(node(AggCall("COUNT", None, "n", pa.int64()))),
        context(**{"table.exec.mini-batch.size": "3"}),
    )
    assert run(op, changes(("+I", "a", 1), ("+I", "a", 1))) == []
    assert run(op, changes(("+I", "a", 1))) == [("+I", "a", 3)]
