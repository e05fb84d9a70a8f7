"""The regular join operator on small changelogs: matches in both directions, NULL keys, a
residual condition, NULL padding and its retraction, updating inputs, state TTL, and a
property against a row-at-a-time model and a batch join.
"""

from __future__ import annotations

import dataclasses
import doctest
from collections import Counter

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql.changelog import final_table
from streamsql.parser.dialect import Flink
from streamsql.plan.changelog import KINDS, OP, RETRACT, Changelog
from streamsql.plan.join_nodes import JOIN_KINDS, Join
from streamsql.runtime.metrics import OperatorMetrics
from streamsql.runtime.operators import join_regular, join_state
from streamsql.runtime.operators.join_regular import TTL_SWEEP_MS, RegularJoinOperator
from tests.changelog_check import check_changelog
from tests.runtime.stubs import Input, context, opened

LEFT = pa.schema([("a", pa.int64()), ("x", pa.int64())])
RIGHT = pa.schema([("b", pa.int64()), ("y", pa.int64())])
OPS = {v: k for k, v in KINDS.items()}
Row = tuple[int | None, int | None]


class ChangingInput(Input):
    @property
    def mode(self) -> Changelog:
        return RETRACT


def operator(
    kind: str = "INNER",
    *,
    where: str | None = None,
    updating: tuple[bool, bool] = (False, False),
    keys: bool = True,
    ctx=None,
) -> RegularJoinOperator:
    condition = None
    if where is not None:
        condition = sqlglot.parse_one(f"SELECT {where} FROM t", read=Flink).expressions[0]
    inputs = [
        (ChangingInput if changing else Input)(fixed=schema)
        for changing, schema in zip(updating, (LEFT, RIGHT), strict=True)
    ]
    on = (("a",), ("b",)) if keys else ((), ())
    node = Join(*inputs, kind, *on, condition=condition)
    return opened(RegularJoinOperator(node), ctx)


def batch(side: int, *items: tuple) -> pa.RecordBatch:
    """Rows ``(k, v)`` of an append-only input, or ``(kind, k, v)`` of an updating one."""
    schema = (LEFT, RIGHT)[side]
    changes = bool(items) and isinstance(items[0][0], str)
    values = [item[1:] if changes else item for item in items]
    columns = {f.name: pa.array([v[i] for v in values], pa.int64()) for i, f in enumerate(schema)}
    if changes:
        columns[OP] = pa.array([OPS[item[0]] for item in items], pa.int8())
    return pa.record_batch(columns)


def run(op: RegularJoinOperator, side: int, *items: tuple) -> list[tuple]:
    """Feed one batch to input ``side``: the output as (kind, a, x, b, y) tuples."""
    out = []
    for b in op.process_batch(batch(side, *items), side):
        for row in b.to_pylist():
            kind = KINDS[row.pop(OP)] if OP in row else "+I"
            out.append((kind, *row.values()))
    return out


# -- inner joins -------------------------------------------------------------------------------


def test_inner_join_matches_rows_arriving_on_either_side():
    op = operator()
    assert run(op, 0, (1, 10), (2, 20)) == []
    assert run(op, 1, (1, 100), (3, 300), (1, 101)) == [
        ("+I", 1, 10, 1, 100),
        ("+I", 1, 10, 1, 101),
    ]
    assert run(op, 0, (3, 30), (1, 11)) == [
        ("+I", 3, 30, 3, 300),
        ("+I", 1, 11, 1, 100),
        ("+I", 1, 11, 1, 101),
    ]
    assert op.describe_state() == {"join_left_rows": 4, "join_right_rows": 3}
    assert op.ctx.metrics.extra["join_state_rows_peak"] == 7


def test_an_append_only_inner_join_has_no_row_kinds():
    op = operator()
    run(op, 0, (1, 10))
    out = op.process_batch(batch(1, (1, 100)), 1)
    assert [b.schema.names for b in out] == [["a", "x", "b", "y"]]


def test_null_keys_never_match_and_inner_sides_do_not_keep_them():
    op = operator()
    assert run(op, 0, (None, 10), (1, 11)) == []
    assert run(op, 1, (None, 100), (1, 101)) == [("+I", 1, 11, 1, 101)]
    assert op.describe_state() == {"join_left_rows": 1, "join_right_rows": 1}


def test_a_full_join_pads_null_keys_on_both_sides():
    op = operator("FULL")
    assert run(op, 0, (None, 10)) == [("+I", None, 10, None, None)]
    assert run(op, 1, (None, 100)) == [("+I", None, None, None, 100)]


def test_the_residual_condition_filters_pairs():
    op = operator(where="x < y")
    run(op, 0, (1, 5), (1, 50))
    assert run(op, 1, (1, 3), (1, 7), (2, 9)) == [("+I", 1, 5, 1, 7)]
    assert run(op, 0, (1, 6)) == [("+I", 1, 6, 1, 7)]


def test_a_join_without_keys_pairs_every_row():
    op = operator(where="x < y", keys=False)
    run(op, 0, (1, 5), (None, 1))
    assert run(op, 1, (7, 3), (8, 6)) == [
        ("+I", None, 1, 7, 3),
        ("+I", 1, 5, 8, 6),
        ("+I", None, 1, 8, 6),
    ]


def test_an_updating_input_retracts_its_pairs():
    op = operator(updating=(True, False))
    run(op, 1, (1, 100), (1, 101))
    assert run(op, 0, ("+I", 1, 10)) == [("+I", 1, 10, 1, 100), ("+I", 1, 10, 1, 101)]
    assert run(op, 0, ("-U", 1, 10), ("+U", 1, 11)) == [
        ("-D", 1, 10, 1, 100),
        ("-D", 1, 10, 1, 101),
        ("+I", 1, 11, 1, 100),
        ("+I", 1, 11, 1, 101),
    ]
    assert op.describe_state() == {"join_left_rows": 1, "join_right_rows": 2}


def test_copies_of_a_row_are_retracted_one_at_a_time():
    op = operator(updating=(False, True))
    run(op, 1, ("+I", 1, 100), ("+I", 1, 100))
    assert run(op, 0, (1, 10)) == [("+I", 1, 10, 1, 100)] * 2
    assert run(op, 1, ("-D", 1, 100)) == [("-D", 1, 10, 1, 100)]
    assert run(op, 1, ("-D", 1, 100)) == [("-D", 1, 10, 1, 100)]
    assert op.describe_state() == {"join_left_rows": 1, "join_right_rows": 0}


def test_a_retraction_of_a_row_that_is_not_there_is_ignored():
    op = operator("LEFT", updating=(True, False))
    assert run(op, 0, ("-D", 1, 10), ("+I", 1, 10), ("-D", 1, 10), ("-D", 1, 10)) == [
        ("+I", 1, 10, None, None),
        ("-D", 1, 10, None, None),
    ]
    assert op.describe_state()["join_left_rows"] == 0


# -- outer joins -------------------------------------------------------------------------------


def test_left_join_pads_a_row_and_retracts_the_padding_once_when_matches_come():
    op = operator("LEFT")
    assert run(op, 0, (1, 10), (2, 20)) == [("+I", 1, 10, None, None), ("+I", 2, 20, None, None)]
    assert run(op, 1, (1, 100), (1, 101), (3, 300)) == [
        ("-D", 1, 10, None, None),
        ("+I", 1, 10, 1, 100),
        ("+I", 1, 10, 1, 101),
    ]
    assert run(op, 0, (3, 30)) == [("+I", 3, 30, 3, 300)]


def test_right_join_mirrors_the_left_join():
    op = operator("RIGHT")
    assert run(op, 1, (1, 100)) == [("+I", None, None, 1, 100)]
    assert run(op, 0, (1, 10), (1, 11), (2, 20)) == [
        ("-D", None, None, 1, 100),
        ("+I", 1, 10, 1, 100),
        ("+I", 1, 11, 1, 100),
    ]


def test_full_join_pads_both_sides():
    op = operator("FULL")
    assert run(op, 0, (1, 10)) == [("+I", 1, 10, None, None)]
    assert run(op, 1, (2, 200), (1, 100)) == [
        ("+I", None, None, 2, 200),
        ("-D", 1, 10, None, None),
        ("+I", 1, 10, 1, 100),
    ]
    assert run(op, 0, (2, 20)) == [("-D", None, None, 2, 200), ("+I", 2, 20, 2, 200)]


def test_a_retraction_taking_the_last_match_away_pads_the_row_again():
    op = operator("LEFT", updating=(False, True))
    run(op, 0, (1, 10))
    run(op, 1, ("+I", 1, 100), ("+I", 1, 101))
    assert run(op, 1, ("-D", 1, 100)) == [("-D", 1, 10, 1, 100)]
    assert run(op, 1, ("-D", 1, 101)) == [("-D", 1, 10, 1, 101), ("+I", 1, 10, None, None)]


def test_a_preserved_row_leaving_retracts_its_padding_or_its_pairs():
    op = operator("LEFT", updating=(True, False))
    run(op, 0, ("+I", 1, 10), ("+I", 2, 20))
    run(op, 1, (1, 100))
    assert run(op, 0, ("-D", 2, 20), ("-D", 1, 10)) == [
        ("-D", 2, 20, None, None),
        ("-D", 1, 10, 1, 100),
    ]


def test_an_update_of_the_matching_side_within_one_batch():
    op = operator("FULL", updating=(False, True))
    run(op, 0, (1, 10))
    assert run(op, 1, ("+I", 1, 100), ("-U", 1, 100), ("+U", 2, 200)) == [
        ("-D", 1, 10, None, None),
        ("+I", 1, 10, 1, 100),
        ("-D", 1, 10, 1, 100),
        ("+I", 1, 10, None, None),
        ("+I", None, None, 2, 200),
    ]
    assert op.describe_state() == {"join_left_rows": 1, "join_right_rows": 1}


# -- state ------------------------------------------------------------------------------------


@pytest.fixture
def small_buffer(monkeypatch):
    """Entries move into DuckDB after every few rows."""
    monkeypatch.setattr(join_state, "FLUSH_ROWS", 2)


def stored_rows(op: RegularJoinOperator) -> list[int]:
    return [op.ctx.state.row_count(side.entries.table) for side in op.sides]


def test_entries_in_duckdb_are_found_rewritten_and_retracted(small_buffer):
    op = operator("FULL", updating=(True, False))
    run(op, 0, ("+I", 1, 10), ("+I", 2, 20), ("+I", 2, 20))
    assert stored_rows(op) == [2, 0]
    assert run(op, 1, (2, 200), (1, 100)) == [
        ("-D", 2, 20, None, None),
        ("-D", 2, 20, None, None),
        ("+I", 2, 20, 2, 200),
        ("+I", 2, 20, 2, 200),
        ("-D", 1, 10, None, None),
        ("+I", 1, 10, 1, 100),
    ]
    assert run(op, 0, ("-D", 2, 20), ("-D", 2, 20), ("-D", 1, 10)) == [
        ("-D", 2, 20, 2, 200),
        ("-D", 2, 20, 2, 200),
        ("+I", None, None, 2, 200),
        ("-D", 1, 10, 1, 100),
        ("+I", None, None, 1, 100),
    ]
    assert run(op, 0, ("+I", 2, 21)) == [("-D", None, None, 2, 200), ("+I", 2, 21, 2, 200)]
    assert op.describe_state() == {"join_left_rows": 1, "join_right_rows": 2}


def test_a_barrier_moves_the_buffered_entries_into_duckdb():
    op = operator("LEFT")
    run(op, 0, (1, 10))
    run(op, 1, (1, 100), (2, 200))
    assert stored_rows(op) == [0, 0]
    op.on_barrier(1)
    assert stored_rows(op) == [1, 2]
    assert run(op, 0, (2, 20)) == [("+I", 2, 20, 2, 200)]


# -- state TTL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flush_rows", [join_state.FLUSH_ROWS, 1])
def test_rows_idle_for_the_state_ttl_expire_and_no_longer_join(monkeypatch, flush_rows):
    monkeypatch.setattr(join_state, "FLUSH_ROWS", flush_rows)
    clock = [1_000_000]
    ctx = context(**{"table.exec.state.ttl": "10 s"})
    ctx.clock = lambda: clock[0]
    op = operator("LEFT", ctx=ctx)
    run(op, 0, (1, 10))
    clock[0] += 6_000
    run(op, 0, (2, 20))
    clock[0] += 5_000  # the first row is 11 s old, the second 5 s
    assert run(op, 1, (1, 100), (2, 200)) == [("-D", 2, 20, None, None), ("+I", 2, 20, 2, 200)]
    assert ctx.metrics.extra["state_rows_expired"] == 1
    assert op.describe_state() == {"join_left_rows": 1, "join_right_rows": 2}


def test_an_expired_row_is_found_expired_between_sweeps():
    clock = [0]
    ctx = context(**{"table.exec.state.ttl": "100 ms"})
    ctx.clock = lambda: clock[0]
    op = operator(ctx=ctx)
    run(op, 0, (1, 10))
    clock[0] += 150  # expired, but no sweep yet
    assert clock[0] < TTL_SWEEP_MS
    assert run(op, 1, (1, 100)) == []
    assert "state_rows_expired" not in ctx.metrics.extra


# -- property ----------------------------------------------------------------------------------

Event = tuple[int, str, Row]  # (side, row kind, row)


def _matches(keys: bool, where: str | None, left: Row, right: Row) -> bool:
    if keys and (left[0] is None or left[0] != right[0]):
        return False
    if where is None:
        return True
    return left[1] is not None and right[1] is not None and left[1] < right[1]


class Model:
    """Flink's StreamingJoinOperator, one row at a time (match counts recomputed)."""

    def __init__(self, kind: str, where: str | None, keys: bool = True) -> None:
        self.on = (keys, where)
        self.outer = (kind in ("LEFT", "FULL"), kind in ("RIGHT", "FULL"))
        self.state: tuple[Counter, Counter] = (Counter(), Counter())

    def match(self, side: int, row: Row, other: Row) -> bool:
        return _matches(*self.on, *((row, other) if side == 0 else (other, row)))

    def apply(self, side: int, kind: str, row: Row) -> list[tuple]:
        this, other = self.state[side], self.state[1 - side]

        def joined(o: Row) -> tuple:
            return (*row, *o) if side == 0 else (*o, *row)

        def padded(r: Row, at: int) -> tuple:
            return (*r, None, None) if at == 0 else (None, None, *r)

        def partners(o: Row) -> int:
            return sum(c for t, c in this.items() if self.match(side, t, o))

        found = [(o, c) for o, c in other.items() if c and self.match(side, row, o)]
        out: list[tuple] = []
        if kind in ("+I", "+U"):
            for o, c in found:
                if self.outer[1 - side] and partners(o) == 0:
                    out += [("-D", *padded(o, 1 - side))] * c
            out += [("+I", *joined(o)) for o, c in found for _ in range(c)]
            if self.outer[side] and not found:
                out.append(("+I", *padded(row, side)))
            this[row] += 1
            return out
        if not this[row]:
            return []
        this[row] -= 1
        if self.outer[side] and not found:
            out.append(("-D", *padded(row, side)))
        out += [("-D", *joined(o)) for o, c in found for _ in range(c)]
        for o, c in found:
            if self.outer[1 - side] and partners(o) == 0:
                out += [("+I", *padded(o, 1 - side))] * c
        return out

    def batch_join(self) -> Counter:
        """The join of the rows left on both sides, computed at once."""
        (left, right), out = self.state, Counter()
        for lrow, lc in left.items():
            for rrow, rc in right.items():
                if _matches(*self.on, lrow, rrow):
                    out[(*lrow, *rrow)] += lc * rc
        if self.outer[0]:
            for lrow, lc in left.items():
                if not any(_matches(*self.on, lrow, r) for r, c in right.items() if c):
                    out[(*lrow, None, None)] += lc
        if self.outer[1]:
            for rrow, rc in right.items():
                if not any(_matches(*self.on, lr, rrow) for lr, c in left.items() if c):
                    out[(None, None, *rrow)] += rc
        return +out


VALUE = st.tuples(st.sampled_from([None, 1, 2, 3]), st.sampled_from([None, 0, 1, 2]))


@st.composite
def scenarios(draw):
    """A join, consistent changelogs of both inputs interleaved, batch cuts and how many
    entries wait before they move into DuckDB.
    """
    kind = draw(st.sampled_from(JOIN_KINDS))
    flush_rows = draw(st.sampled_from([join_state.FLUSH_ROWS, 1, 3]))
    where = draw(st.sampled_from([None, "x < y"]))
    keys = draw(st.booleans())
    updating = (draw(st.booleans()), draw(st.booleans()))
    live: tuple[list[Row], list[Row]] = ([], [])
    events: list[Event] = []
    for _ in range(draw(st.integers(0, 24))):
        side = draw(st.integers(0, 1))
        action = draw(st.integers(0, 2)) if updating[side] and live[side] else 0
        if action:  # take a live row back (and update it)
            old = live[side].pop(draw(st.integers(0, len(live[side]) - 1)))
            events.append((side, "-D" if action == 1 else "-U", old))
        if action != 1:
            row = draw(VALUE)
            live[side].append(row)
            events.append((side, "+U" if action else "+I", row))
    cuts = draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    return kind, (keys, where), updating, events, cuts, flush_rows


def _batches(events: list[Event], cuts: list[bool]) -> list[list[Event]]:
    out: list[list[Event]] = []
    for event, cut in zip(events, cuts, strict=True):
        if not out or cut or out[-1][0][0] != event[0]:
            out.append([])
        out[-1].append(event)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_batching_matches_row_at_a_time_and_the_batch_join(scenario):
    kind, on, updating, events, cuts, flush_rows = scenario
    flush_before = join_state.FLUSH_ROWS
    join_state.FLUSH_ROWS = flush_rows
    try:
        _check(kind, on, updating, _batches(events, cuts))
    finally:
        join_state.FLUSH_ROWS = flush_before


_shared = []


def _fresh_context():
    """A context on one DuckDB connection for all examples (connecting takes long)."""
    if not _shared:
        _shared.append(context())
    return dataclasses.replace(_shared[0], metrics=OperatorMetrics(1, 0, "op"))


def _check(kind: str, on: tuple[bool, str | None], updating: tuple[bool, bool], batches) -> None:
    keys, where = on
    op = operator(kind, where=where, updating=updating, keys=keys, ctx=_fresh_context())
    model = Model(kind, where, keys)
    log: list[pa.RecordBatch] = []
    for part in batches:
        side = part[0][0]
        items = [(k, *row) if updating[side] else row for _, k, row in part]
        outputs = list(op.process_batch(batch(side, *items), side))
        log += outputs
        got = Counter(
            (KINDS[r.pop(OP)] if OP in r else "+I", *r.values())
            for b in outputs
            for r in b.to_pylist()
        )
        expected = Counter(change for _, k, row in part for change in model.apply(side, k, row))
        assert got == expected
    check_changelog(log)
    schema = op.schema.append(pa.field(OP, pa.int8())) if op.updating else op.schema
    final = final_table(log, schema)
    assert Counter(tuple(r.values()) for r in final.to_pylist()) == model.batch_join()


def test_the_model_emits_in_the_operators_order():
    """One row's outputs: padded rows retracted, joined rows, padded rows restored."""
    op, model = operator("FULL", updating=(True, True)), Model("FULL", None)
    for side, kind, row in [(0, "+I", (1, 1)), (1, "+I", (1, 5)), (0, "-D", (1, 1))]:
        assert run(op, side, (kind, *row)) == model.apply(side, kind, row)


def test_doctests():
    assert doctest.testmod(join_regular).failed == 0
