"""Derived metrics: rates, utilization, backpressure, channel fill, watermark lag, state."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from streamsql.runtime.job import JobResult
from streamsql.runtime.metrics import (
    STATE_ROW_KEYS,
    OperatorMetrics,
    combine,
    figures_of,
    instance_figures,
    operator_figures,
    state_rows,
)
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.operators.chain import Chain
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK
from tests.runtime.stubs import context


def metrics(task: int, instance: int, name: str, **fields) -> OperatorMetrics:
    return OperatorMetrics(task, instance, name, **fields)


def test_rates_and_ratios_are_over_the_elapsed_time() -> None:
    m = metrics(1, 0, "Scan", rows_in=1000, rows_out=500, busy_s=2.5, blocked_s=1.0)
    [f] = figures_of([m], elapsed_s=10.0)
    assert f.rows_in_per_s == 100.0 and f.rows_out_per_s == 50.0
    assert f.utilization == 0.25 and f.headroom == 0.75
    assert f.backpressured == 0.1


def test_ratios_stay_within_zero_and_one() -> None:
    m = metrics(1, 0, "Scan", busy_s=10.2, blocked_s=11.0)
    [f] = figures_of([m], elapsed_s=10.0)
    assert f.utilization == 1.0 and f.headroom == 0.0 and f.backpressured == 1.0
    [idle] = figures_of([metrics(1, 0, "Scan")], elapsed_s=0.0)
    assert idle.utilization == 0.0 and idle.rows_in_per_s == 0.0


def test_channel_fill_only_where_there_is_a_channel() -> None:
    queued = metrics(2, 0, "Calc", queued_batches=3, queue_capacity=4)
    unqueued = metrics(1, 0, "Scan")
    a, b = figures_of([queued, unqueued], elapsed_s=1.0)
    assert a.channel_fill == 0.75
    assert b.channel_fill is None


def test_watermark_lag_is_behind_the_newest_watermark() -> None:
    fast = metrics(1, 0, "Scan", watermark=10_000)
    slow = metrics(1, 1, "Scan", watermark=7_500)
    behind = metrics(2, 0, "WindowAggregate", watermark=7_000)
    fresh = metrics(2, 1, "WindowAggregate", watermark=MIN_WATERMARK)
    done = metrics(3, 0, "Sink", watermark=MAX_WATERMARK)
    figures = figures_of([fast, slow, behind, fresh, done], elapsed_s=1.0)
    assert [f.watermark_lag_ms for f in figures] == [0, 2_500, 3_000, None, 0]
    assert figures[3].watermark is None  # no watermark yet


def test_state_rows_come_from_the_state_counters() -> None:
    assert "window_agg_state_rows" in STATE_ROW_KEYS and "open_windows" not in STATE_ROW_KEYS
    m = metrics(2, 0, "Join", extra={"join_left_rows": 4, "join_right_rows": 6, "rows_written": 1})
    assert state_rows(m.extra) == 10
    [f] = figures_of([m], elapsed_s=1.0)
    assert f.state_rows == 10 and f.state_rows_peak == 10
    [stateless] = figures_of([metrics(1, 0, "Calc", extra={"rows_written": 3})], 1.0)
    assert stateless.state_rows is None and stateless.state_rows_peak is None


def test_record_state_keeps_the_peak() -> None:
    m = metrics(2, 0, "WindowAggregate")
    m.record_state({"window_agg_state_rows": 40, "open_windows": 2})
    m.record_state({"window_agg_state_rows": 0, "open_windows": 0})
    [f] = figures_of([m], elapsed_s=1.0)
    assert f.state_rows == 0 and f.state_rows_peak == 40
    assert m.extra["open_windows"] == 0


def test_chained_operators_are_numbered_in_chain_order() -> None:
    ms = [
        metrics(2, 0, "Calc"),
        metrics(2, 0, "Calc"),
        metrics(2, 1, "Calc"),
        metrics(2, 1, "Calc"),
    ]
    assert [(f.instance, f.node) for f in figures_of(ms, 1.0)] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_instances_combine_into_the_operator() -> None:
    a = metrics(2, 0, "WindowAggregate", rows_in=90, busy_s=9.0, watermark=5_000)
    b = metrics(2, 1, "WindowAggregate", rows_in=10, busy_s=1.0, watermark=8_000)
    for m, rows in ((a, 7), (b, 3)):
        m.record_state({"window_agg_state_rows": rows})
    [op] = combine(figures_of([a, b], elapsed_s=10.0))
    assert op.instance is None and op.instances == 2
    assert op.rows_in == 100 and op.rows_in_per_s == 10.0
    assert op.utilization == 0.9  # the busiest instance holds the operator back
    assert op.headroom == pytest.approx(0.1)
    assert op.watermark == 5_000 and op.watermark_lag_ms == 3_000
    assert op.state_rows == 10


def test_job_result_helpers() -> None:
    ops = [metrics(1, 0, "Scan", rows_in=8), metrics(1, 1, "Scan", rows_in=2)]
    result = JobResult("j", 2.0, ops, {})
    assert [f.rows_in for f in instance_figures(result)] == [8, 2]
    [op] = operator_figures(result)
    assert op.rows_in == 10 and op.rows_in_per_s == 5.0
    assert op.as_dict()["operator"] == "Scan"


def test_the_summary_says_how_many_cores_the_job_kept_busy() -> None:
    result = JobResult("j", 2.0, [], {"t": {"rows_read": 10}}, cpu_s=3.0)
    assert result.cores == 1.5
    assert result.summary().endswith("2.00 s (5 rows/s, 1.5 cores busy)")


# -- what the chain measures --------------------------------------------------------------


class SlowFiring(Operator):
    """Holds rows and emits them on the final watermark, after a pause."""

    def __init__(self) -> None:
        self.held: list[pa.RecordBatch] = []

    def process_batch(self, batch, input_index):
        self.held.append(batch)
        return []

    def on_watermark(self, wm):
        if wm < MAX_WATERMARK:
            return []
        time.sleep(0.05)
        out, self.held = self.held, []
        return out

    def describe_state(self) -> dict[str, int]:
        return {"window_agg_state_rows": sum(b.num_rows for b in self.held)}


def test_chain_counts_firing_as_busy_and_samples_state_before_the_end() -> None:
    op = SlowFiring()
    ctx = context()
    chain = Chain([op], [ctx])
    chain.open(ctx)
    chain.process_batch(pa.record_batch({"x": [1, 2, 3]}), 0)
    out = chain.on_watermark(MAX_WATERMARK)
    assert sum(b.num_rows for b in out) == 3
    m = ctx.metrics
    assert m.busy_s >= 0.05  # the firing counts, not only process_batch
    assert m.rows_out == 3
    assert m.state_rows_peak == 3  # sampled before the end of input fired the rows
