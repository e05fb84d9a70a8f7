"""The deterministic driver: watermarks are the minimum over all inputs, rows fired by a
watermark travel before it, and the end of input flushes everything.
"""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa

import streamsql
from streamsql.runtime.driver import Driver
from streamsql.runtime.job import Instance
from streamsql.runtime.operators import Chain, Operator
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK
from tests.runtime.stubs import context


class Recorder(Operator):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def process_batch(self, batch, input_index):
        return [batch]

    def on_watermark(self, watermark):
        self.seen.append(watermark)
        return ()


class FakeTask:
    id = 7
    name = "fake"


def _instance(inputs: int) -> tuple[Instance, Recorder]:
    rec = Recorder()
    ctx = context()
    chain = Chain([rec], [ctx])
    chain.open(ctx)
    inst = Instance(FakeTask(), 0, chain, [ctx.metrics])  # type: ignore[arg-type]
    for i in range(inputs):
        inst.input_watermarks[(0, i)] = MIN_WATERMARK
        inst.open_inputs.add((0, i))
    return inst, rec


def _driver() -> Driver:
    driver = Driver.__new__(Driver)
    driver.out_edges = {FakeTask.id: []}
    driver.edge_index = {}
    driver.job = SimpleNamespace(coordinator=None)  # no checkpoints
    return driver


def test_watermark_is_the_minimum_over_every_input():
    inst, rec = _instance(inputs=2)
    driver = _driver()
    driver._input_watermark(inst, (0, 0), 100)
    assert inst.watermark == MIN_WATERMARK and rec.seen == []
    driver._input_watermark(inst, (0, 1), 50)
    assert inst.watermark == 50
    driver._input_watermark(inst, (0, 1), 200)
    assert inst.watermark == 100
    driver._input_watermark(inst, (0, 0), 90)  # watermarks never go back
    assert rec.seen == [50, 100]


def test_an_ended_input_stops_holding_the_watermark_back():
    inst, rec = _instance(inputs=2)
    driver = _driver()
    driver._input_watermark(inst, (0, 0), 100)
    driver._end_input(inst, (0, 1))
    assert inst.watermark == 100 and not inst.closed
    driver._end_input(inst, (0, 0))
    assert inst.watermark == MAX_WATERMARK and inst.closed
    assert rec.seen == [100, MAX_WATERMARK]


def test_every_instance_reaches_plus_infinity_at_the_end(tmp_path):
    s = streamsql.connect(settings={"parallelism.default": "3", "execution.batch-size": "5"})
    s.execute(
        "CREATE TABLE t (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id * 100, 3), "
        "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', "
        "'number-of-rows' = '50', 'rows-per-second' = '1000000', 'fields.id.kind' = "
        "'sequence', 'fields.id.start' = '1', 'fields.id.end' = '50')"
    )
    handle = s.sql(
        "SELECT window_start, id % 4 AS k, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE t, "
        "DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, id % 4"
    )
    table = handle.to_arrow()
    assert sum(table.column("n").to_pylist()) == 50
    assert set(handle.result.watermarks.values()) == {MAX_WATERMARK}
    counters = handle.result.by_operator()
    # Two phases: the local one (after the spread projection) sees the rows.
    local = next(c for c in counters if c["operator"] == "LocalWindowAggregate")
    merge = next(c for c in counters if c["operator"] == "GlobalWindowAggregate")
    assert local["rows_in"] == 50 and merge["instances"] == 3
    assert pa.types.is_timestamp(table.schema.field("window_start").type)
