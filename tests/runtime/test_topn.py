"""The Top-N operator: only changed ranks are emitted; retractions let the next row in."""

from __future__ import annotations

import pyarrow as pa

from streamsql.plan.changelog import RETRACT, Changelog
from streamsql.plan.nodes import SortKey, TopN
from streamsql.runtime.operators.topn import TopNOperator
from tests.runtime.stubs import Input, opened

KINDS = {0: "+I", 1: "-U", 2: "+U", 3: "-D"}
SCHEMA = pa.schema([("k", pa.string()), ("v", pa.int64())])


class ChangingInput(Input):
    @property
    def mode(self) -> Changelog:
        return RETRACT


def operator(limit: int, rank: bool, updating: bool = False) -> TopNOperator:
    source = ChangingInput(fixed=SCHEMA) if updating else Input(fixed=SCHEMA)
    order = (SortKey("v", ascending=False),)
    return opened(TopNOperator(TopN(source, ("k",), order, limit, "rn" if rank else None)))


def rows(*items, ops=None) -> pa.RecordBatch:
    data = {"k": pa.array([i[0] for i in items], pa.string()), "v": [i[1] for i in items]}
    if ops is not None:
        data["_op"] = pa.array(ops, pa.int8())
    return pa.record_batch(data)


def run(op, batch) -> list[tuple]:
    out = []
    for b in op.process_batch(batch, 0):
        for row in b.to_pylist():
            out.append((KINDS[row.pop("_op")], *row.values()))
    return out


def test_only_the_ranks_that_change_are_emitted():
    op = operator(3, rank=True)
    assert run(op, rows(("a", 5), ("a", 3))) == [("+I", "a", 5, 1), ("+I", "a", 3, 2)]
    # 4 enters at rank 2: rank 2 changes hands, rank 3 is new; rank 1 is untouched.
    assert run(op, rows(("a", 4))) == [("-U", "a", 3, 2), ("+U", "a", 4, 2), ("+I", "a", 3, 3)]
    assert run(op, rows(("a", 1))) == []  # below the top 3: nothing changes
    assert op.describe_state()["topn_state_rows"] == 3  # append-only: only the top is kept


def test_without_the_rank_rows_enter_and_leave():
    op = operator(2, rank=False)
    run(op, rows(("a", 5), ("a", 3)))
    assert run(op, rows(("a", 4))) == [("-D", "a", 3), ("+I", "a", 4)]


def test_dedup_replaces_the_row_of_its_key():
    op = operator(1, rank=False)
    assert run(op, rows(("a", 1), ("b", 2))) == [("+I", "a", 1), ("+I", "b", 2)]
    assert run(op, rows(("a", 7))) == [("-U", "a", 1), ("+U", "a", 7)]


def test_a_retracted_top_row_lets_the_next_one_in():
    op = operator(2, rank=True, updating=True)
    run(op, rows(("a", 5), ("a", 3), ("a", 1), ops=[0, 0, 0]))
    assert run(op, rows(("a", 5), ops=[3])) == [
        ("-U", "a", 5, 1),
        ("-U", "a", 3, 2),
        ("+U", "a", 3, 1),
        ("+U", "a", 1, 2),
    ]
    assert run(op, rows(("a", 9), ops=[3])) == []  # nothing matches: counted, ignored
    assert op.ctx.metrics.extra["unmatched_retractions"] == 1


def test_an_update_in_one_batch_retracts_the_old_row_not_the_new():
    op = operator(1, rank=False, updating=True)
    run(op, rows(("a", 5), ops=[0]))
    assert run(op, rows(("a", 5), ("a", 6), ops=[1, 2])) == [("-U", "a", 5), ("+U", "a", 6)]
