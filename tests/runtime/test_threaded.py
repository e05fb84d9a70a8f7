"""The threaded executor: bounded channels, backpressure up to the sources, load shedding,
skew visible in the metrics, stopping and errors without deadlock.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

import streamsql
from streamsql.connectors.base import (
    REGISTRY,
    Connector,
    Option,
    Sink,
    SinkContext,
    TableContext,
)
from streamsql.errors import ExecError
from streamsql.parser import ast, parse_statement
from streamsql.plan.binder import Binder
from streamsql.runtime.channel import Channel, Closed
from streamsql.runtime.driver import Driver
from streamsql.runtime.threaded import ThreadedDriver
from streamsql.session import Session

BATCH = pa.record_batch({"x": list(range(10))})


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread and fail the test if it does not finish in time (a deadlock)."""
    out: dict[str, Any] = {}

    def call() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:
            out["error"] = e

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a deadlock?"
    if "error" in out:
        raise out["error"]
    return out.get("value")


# -- a sink that takes its time --------------------------------------------------------------


class Probe:
    """What the test sinks saw, shared by every instance of a test's sink."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches = 0
        self.rows = 0
        self.ids: list[int] = []
        self.closed = 0
        self.check: Callable[[], None] | None = None  # called at every write


PROBES: dict[str, Probe] = {}


class SlowSink(Sink):
    def __init__(self, probe: Probe, delay_s: float, fail_at: int, error: str) -> None:
        super().__init__()
        self.probe, self.delay_s, self.fail_at, self.error = probe, delay_s, fail_at, error

    def write(self, batch: pa.RecordBatch) -> None:
        with self.probe.lock:
            self.probe.batches += 1
            n = self.probe.batches
        if self.fail_at and n >= self.fail_at:
            if self.error == "sql":
                raise ExecError("the test sink refuses this batch")
            raise ValueError("the test sink broke")
        if self.probe.check is not None:
            self.probe.check()
        time.sleep(self.delay_s)
        with self.probe.lock:
            self.probe.rows += batch.num_rows
            if "id" in batch.schema.names:
                self.probe.ids += batch.column("id").to_pylist()

    def close(self) -> None:
        with self.probe.lock:
            self.probe.closed += 1


class SlowConnector(Connector):
    """``'connector' = 'test-slow'``: sleeps 'delay' per batch; 'fail-at' raises."""

    name = "test-slow"
    sink_class = SlowSink
    sink_options = (
        Option("probe", required=True),
        Option("delay", "duration", 0),
        Option("fail-at", "int", 0),
        Option("error", "string", "python"),
    )

    def accepts_updates(self, table: TableContext) -> bool:
        return True

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        opts = self.validate(table, "sink")
        probe = PROBES.setdefault(opts["probe"], Probe())
        return SlowSink(probe, opts["delay"] / 1000, opts["fail-at"], opts["error"])


_probes = iter(range(1_000_000))


@pytest.fixture(autouse=True, scope="module")
def slow_connector() -> Iterator[None]:
    """'test-slow' is known to the registry while these tests run, and only then."""
    REGISTRY.add(SlowConnector())
    yield
    REGISTRY.connectors.pop(SlowConnector.name)


def slow_session(
    rows: int | None,
    *,
    delay_ms: int = 0,
    fail_at: int = 0,
    error: str = "python",
    columns: str = "id BIGINT, k BIGINT",
    key: str = "",
    gen: str = "",
    **settings: str,
) -> tuple[Session, Probe]:
    """A session with a datagen table ``src`` (``rows`` rows, ids 1.., as fast as it can)
    and a ``test-slow`` table ``out``.
    """
    name = f"probe-{next(_probes)}"
    probe = PROBES.setdefault(name, Probe())
    s = streamsql.connect(settings={"execution.runtime": "threads", **settings})
    bound = f", 'number-of-rows' = '{rows}'" if rows is not None else ""
    s.execute(
        f"""
        CREATE TABLE src (id BIGINT, k BIGINT) WITH ('connector' = 'datagen',
            'rows-per-second' = '1000000000', 'fields.id.kind' = 'sequence',
            'fields.id.start' = '1', 'fields.id.end' = '{rows or 10**12}'{bound}{gen});
        CREATE TABLE out ({columns}{key}) WITH ('connector' = 'test-slow', 'probe' = '{name}',
            'delay' = '{delay_ms} ms', 'fail-at' = '{fail_at}', 'error' = '{error}');
        """
    )
    return s, probe


def start(s: Session, sql: str) -> Any:
    """The (not yet started) executor of an INSERT."""
    stmt = parse_statement(sql)
    assert isinstance(stmt, ast.Insert)
    planned = s.plan((Binder(s.catalog, s.settings).insert(stmt),))
    return s.driver(planned)


# -- the channel -----------------------------------------------------------------------------


def test_a_full_channel_blocks_until_the_low_mark():
    ch = Channel(max_batches=4, max_bytes=1 << 30)
    for _ in range(4):
        assert ch.put_batch((0, 0), BATCH, 0) == (True, 0.0)
    assert ch.blocked_since is not None
    resumed = threading.Event()

    def producer() -> None:
        ch.put_batch((0, 0), BATCH, 0)
        resumed.set()

    threading.Thread(target=producer, daemon=True).start()
    ch.get(1)  # 3 left: above the low mark (2), the producer keeps waiting
    assert not resumed.wait(0.05)
    ch.get(1)  # 2 left: the low mark
    assert resumed.wait(2)
    assert ch.max_queued == 4 and ch.metrics.queue_capacity == 4


def test_the_byte_limit_blocks_too():
    ch = Channel(max_batches=100, max_bytes=BATCH.nbytes * 2)
    ch.put_batch((0, 0), BATCH, 0)
    assert ch.blocked_since is None
    ch.put_batch((0, 0), BATCH, 0)
    assert ch.blocked_since is not None
    queued, waited = ch.put_batch((0, 0), BATCH, 0, give_up_after=0.02)
    assert not queued and waited >= 0.015


def test_watermarks_never_block_and_a_waiting_one_is_overwritten():
    ch = Channel(max_batches=1, max_bytes=1 << 30)
    ch.put_batch((0, 0), BATCH, 0)
    ch.put_watermark((0, 0), 1)
    ch.put_watermark((0, 1), 5)
    ch.put_watermark((0, 0), 2)  # replaces (0, 0)'s 1: nothing of (0, 0) came between
    got = [ch.get(0) for _ in range(4)]
    assert [(m.kind, m.key, m.value) for m in got if m is not None and m.kind != "batch"] == [
        ("watermark", (0, 0), 2),
        ("watermark", (0, 1), 5),
    ]
    ch.put_watermark((0, 0), 3)
    ch.put_batch((0, 0), BATCH, 0)
    ch.put_watermark((0, 0), 4)  # after a batch: a message of its own, in order
    kinds = [(m.kind, m.value if m.kind != "batch" else None) for m in (ch.get(0), ch.get(0))]
    assert kinds == [("watermark", 3), ("batch", None)]
    last = ch.get(0)
    assert last is not None and last.value == 4


def test_closing_wakes_a_blocked_producer():
    ch = Channel(max_batches=1, max_bytes=1 << 30)
    ch.put_batch((0, 0), BATCH, 0)
    failed: list[BaseException] = []

    def producer() -> None:
        try:
            ch.put_batch((0, 0), BATCH, 0)
        except Closed as e:
            failed.append(e)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    time.sleep(0.02)
    ch.close()
    thread.join(2)
    assert not thread.is_alive() and failed


# -- the executor ------------------------------------------------------------------------------


def test_the_runtime_setting_picks_the_executor():
    s, _ = slow_session(10)
    assert isinstance(start(s, "INSERT INTO out SELECT * FROM src"), ThreadedDriver)
    s.execute("SET 'execution.runtime' = 'deterministic'")
    assert isinstance(start(s, "INSERT INTO out SELECT * FROM src"), Driver)


def test_a_slow_sink_throttles_the_source_and_memory_stays_bounded():
    capacity, batch = 2, 10
    s, probe = slow_session(
        1500,
        delay_ms=2,
        **{
            "parallelism.default": "2",  # a channel between the source and the two sinks
            "execution.batch-size": str(batch),
            "execution.buffer.max-batches": str(capacity),
        },
    )
    driver = start(s, "INSERT INTO out SELECT * FROM src")
    source = next(i for i in driver.job.all_instances() if i.reader is not None)
    sinks = [i for i in driver.job.all_instances() if i.reader is None]
    ahead: list[int] = []
    queued: list[int] = []

    def check() -> None:
        # Read, but not yet written: in the channels, in the sinks' hands, in the source's.
        assert source.reader is not None
        ahead.append(source.reader.counters["rows_read"] - probe.rows)
        queued.extend(i.metrics[0].queued_batches for i in sinks)

    probe.check = check
    within(30, driver.run)
    result = driver.job.result()
    assert result.rows_read == probe.rows == 1500
    channels = [driver.channels[i] for i in sinks]
    assert max(c.max_queued for c in channels) == capacity  # full, never above
    assert all(i.metrics[0].queue_capacity == capacity for i in sinks)
    # Per sink: its channel, the batch it writes; and the one the source holds.
    assert max(ahead) <= (2 * (capacity + 1) + 1) * batch
    assert max(queued) > 0  # the fill shows in the metrics while the job runs
    assert source.metrics[-1].blocked_s > 0.1  # the source waited for room most of the time
    assert result.events_dropped == 0


def test_load_shedding_drops_and_counts_exactly_the_events_that_did_not_fit():
    s, probe = slow_session(
        3000,
        delay_ms=20,
        **{
            "parallelism.default": "2",
            "execution.batch-size": "10",
            "execution.buffer.max-batches": "2",
            "execution.overload.policy": "drop",
            "execution.overload.timeout": "10 ms",
        },
    )
    result = within(30, lambda: s.execute("INSERT INTO out SELECT * FROM src").job)
    assert result is not None
    assert result.rows_read == 3000
    assert 0 < result.events_dropped < 3000
    assert result.rows_written == probe.rows == len(probe.ids)
    assert result.rows_written + result.events_dropped == result.rows_read
    assert len(set(probe.ids)) == len(probe.ids)  # nothing written twice
    assert f"{result.events_dropped:,} events dropped" in result.summary()


def test_the_default_policy_drops_nothing():
    s, probe = slow_session(
        400,
        delay_ms=1,
        **{"parallelism.default": "2", "execution.batch-size": "10"},
    )
    result = within(30, lambda: s.execute("INSERT INTO out SELECT * FROM src").job)
    assert result is not None and result.events_dropped == 0
    assert sorted(probe.ids) == list(range(1, 401))
    assert "dropped (overload)" not in result.summary()


def test_a_hot_key_shows_as_one_busy_instance_and_a_blocked_upstream():
    s, _ = slow_session(
        1000,
        columns="k BIGINT, n BIGINT",
        key=", PRIMARY KEY (k) NOT ENFORCED",
        gen=", 'fields.k.min' = '7', 'fields.k.max' = '7'",  # one key: all to one instance
        **{
            "parallelism.default": "2",
            "execution.batch-size": "10",
            "execution.buffer.max-batches": "2",
            "table.exec.mini-batch.enabled": "false",  # state updated batch by batch: slow
        },
    )
    driver = start(s, "INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k")
    within(60, driver.run)
    result = driver.job.result()
    aggregates = [i for i in driver.job.all_instances() if i.task.name.startswith("Aggregate")]
    assert len(aggregates) == 2
    busy = sorted(sum(m.busy_s for m in i.metrics) / result.elapsed_s for i in aggregates)
    assert busy[1] > 0.8, busy  # the hot instance: busy nearly all the time
    assert busy[0] < 0.01, busy  # the other one: nothing to do
    source = next(i for i in driver.job.all_instances() if i.reader is not None)
    assert source.metrics[-1].blocked_s / result.elapsed_s > 0.5  # it waited for the hot one
    sinks = [i for i in driver.job.all_instances() if i.task.name.startswith("Sink")]
    assert all(i.metrics[-1].blocked_s == 0 for i in sinks + aggregates)


def test_closing_the_steps_stops_a_blocked_job_and_publishes_the_sinks():
    s, probe = slow_session(
        None,
        delay_ms=20,
        **{
            "parallelism.default": "2",
            "execution.batch-size": "10",
            "execution.buffer.max-batches": "1",
        },
    )
    driver = start(s, "INSERT INTO out SELECT * FROM src")
    steps = driver.steps()

    def run_a_while() -> None:
        began = time.monotonic()
        for _ in steps:
            if time.monotonic() - began > 0.3:
                break
        steps.close()

    within(10, run_a_while)
    assert all(not t.is_alive() for t in driver.threads)
    assert probe.closed == 2  # both sink instances published what they had
    assert probe.rows > 0
    assert driver.job.result().rows_written == probe.rows


def test_ctrl_c_stops_the_job_cleanly():
    s, probe = slow_session(None, delay_ms=10, **{"parallelism.default": "2"})
    driver = start(s, "INSERT INTO out SELECT * FROM src")
    steps = driver.steps()

    def interrupt() -> None:
        next(steps)
        time.sleep(0.1)
        with pytest.raises(KeyboardInterrupt):
            steps.throw(KeyboardInterrupt)

    within(10, interrupt)
    assert all(not t.is_alive() for t in driver.threads)
    assert probe.closed == 2


def test_stop_from_another_thread_ends_a_running_job():
    s, probe = slow_session(None, delay_ms=5, **{"parallelism.default": "2"})
    driver = start(s, "INSERT INTO out SELECT * FROM src")
    runner = threading.Thread(target=driver.run, daemon=True)
    runner.start()
    time.sleep(0.2)
    driver.stop()
    runner.join(10)
    assert not runner.is_alive()
    assert all(not t.is_alive() for t in driver.threads)
    assert probe.closed == 2


@pytest.mark.parametrize("parallelism", [1, 2])
def test_an_error_in_a_thread_fails_the_job_and_names_the_instance(parallelism):
    s, probe = slow_session(
        None,
        fail_at=3,
        **{"parallelism.default": str(parallelism), "execution.batch-size": "10"},
    )
    with pytest.raises(ExecError) as failed:
        within(10, lambda: s.execute("INSERT INTO out SELECT * FROM src"))
    assert re.fullmatch(
        r"\[\d\] .*Sink: out #\d failed: ValueError: the test sink broke", failed.value.message
    )
    assert isinstance(failed.value.__cause__, ValueError)
    assert probe.closed == 0  # a failed job publishes nothing more


def test_a_streamsql_error_in_a_thread_is_raised_as_it_is():
    s, _ = slow_session(
        None,
        fail_at=2,
        error="sql",
        **{"parallelism.default": "2", "execution.batch-size": "10"},
    )
    with pytest.raises(ExecError) as failed:
        within(10, lambda: s.execute("INSERT INTO out SELECT * FROM src"))
    assert failed.value.message == "the test sink refuses this batch"


def test_results_stream_while_the_job_runs():
    s, _ = slow_session(None, **{"parallelism.default": "2", "execution.batch-size": "100"})
    handle = s.sql("SELECT id FROM src WHERE id % 2 = 0")
    seen = 0

    def take() -> None:
        nonlocal seen
        for batch in handle.stream():
            seen += batch.num_rows
            if seen >= 1000:
                break

    within(10, take)
    assert seen >= 1000
    assert handle.result is not None and handle.result.rows_read >= 2000
