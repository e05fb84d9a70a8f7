"""The memory connector: pushing rows, batch boundaries, watermark hints, the end, the sink."""

from __future__ import annotations

import datetime as dt
import doctest
import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pytest

import streamsql
from streamsql.changelog import final_table
from streamsql.connectors import base, fs_monitor, get_connector, memory
from streamsql.connectors.base import SinkContext, Source
from streamsql.connectors.memory import MemoryStream, stream
from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import read_batches, source, table

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("ts", pa.timestamp("ms"))])
_names = itertools.count()


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh stream name (streams are process-wide), reset afterwards."""
    unique = f"test-{next(_names)}"
    yield unique
    stream(unique).reset()


def open_source(name: str, batch_size: int = 100, columns: list[str] | None = None, **ctx: int):
    t = table(SCHEMA, connector="memory", name=name)
    src = source(t, columns=columns, batch_size=batch_size, **ctx)
    src.open()
    return src


def sizes(src: Source, rounds: int = 10) -> list[int]:
    """Rows of the non-empty batches of ``rounds`` reads (stopping at the end)."""
    out = []
    for _ in range(rounds):
        batch = src.read()
        if batch is None:
            break
        if batch.num_rows:
            out.append(batch.num_rows)
    return out


def test_rows_pushed_before_the_source_opens_are_converted_and_delivered(name: str) -> None:
    s = stream(name)
    s.push([{"id": 1, "name": "a", "ts": dt.datetime(2024, 3, 1, 9)}, {"id": 2, "ts": 0}])
    assert s.schema is None  # dicts wait for a schema
    src = open_source(name)
    assert s.schema == SCHEMA  # learnt from the table
    batch = src.read()
    assert batch.schema == SCHEMA
    assert batch.to_pylist() == [
        {"id": 1, "name": "a", "ts": dt.datetime(2024, 3, 1, 9)},
        {"id": 2, "name": None, "ts": dt.datetime(1970, 1, 1)},
    ]
    assert src.counters["rows_read"] == 2


def test_a_push_is_split_by_the_batch_size_but_never_merged(name: str) -> None:
    s = stream(name, schema=SCHEMA)
    src = open_source(name, batch_size=4)
    s.push([{"id": i} for i in range(5)])
    s.push(pa.table({"id": [5, 6, 7], "name": ["x"] * 3, "ts": pa.array([0] * 3, pa.int64())}))
    s.push([])  # nothing: no batch
    assert sizes(src) == [4, 1, 3]
    empty = src.read()
    assert empty is not None and empty.num_rows == 0 and empty.schema == SCHEMA


def test_projection_and_arrow_pushes_by_column_name(name: str) -> None:
    s = stream(name, schema=SCHEMA)
    s.push(pa.record_batch({"ts": pa.array([7], pa.timestamp("ms")), "name": ["n"], "id": [3]}))
    src = open_source(name, columns=["name", "id"])
    assert src.read().to_pylist() == [{"name": "n", "id": 3}]
    src = open_source(name, columns=[])
    assert src.read().num_rows == 1  # e.g. for COUNT(*)


@pytest.mark.parametrize(
    ("rows", "message", "hint"),
    [
        ([{"idd": 1}], "has no column 'idd'", "did you mean 'id'?"),
        (pa.table({"id": [1], "name": ["x"]}), "needs column 'ts'", None),
        ([{"id": "one"}], "rows do not fit", None),
        (pa.table({"id": ["x"], "name": ["x"], "ts": [1]}), "rows do not fit", None),
    ],
)
def test_rows_that_do_not_fit_are_refused_at_push(name: str, rows, message, hint) -> None:
    s = stream(name, schema=SCHEMA)
    with pytest.raises(ExecError, match=message) as info:
        s.push(rows)
    assert info.value.hint == hint


def test_bad_rows_pushed_early_fail_when_the_source_opens(name: str) -> None:
    stream(name).push([{"nope": 1}])
    with pytest.raises(ExecError, match="has no column 'nope'"):
        open_source(name)


def test_push_takes_batches_tables_and_lists_only(name: str) -> None:
    with pytest.raises(TypeError, match="not dict"):
        stream(name).push({"id": 1})  # type: ignore[arg-type]


def test_a_schema_given_twice_must_agree(name: str) -> None:
    stream(name, schema=SCHEMA)
    assert stream(name, schema=SCHEMA).schema == SCHEMA
    with pytest.raises(ExecError, match="already has the schema"):
        stream(name, schema=SCHEMA.remove(2))


def test_watermark_hints_apply_after_the_rows_pushed_before_them(name: str) -> None:
    s = stream(name)
    src = open_source(name, batch_size=2)
    assert src.watermark() is None
    s.advance_watermark(100)  # nothing is queued: it holds at once
    assert src.watermark() == 100
    s.push([{"id": i, "ts": 150} for i in range(3)])
    s.advance_watermark(200)
    s.advance_watermark(150)  # the largest hint counts
    assert src.watermark() == 100  # three rows pushed before the hint are not read yet
    assert src.read().num_rows == 2
    assert src.watermark() == 100
    assert src.read().num_rows == 1
    assert src.watermark() == 200
    assert Source().watermark() is None  # the default: a source vouches for nothing


def test_end_ends_after_the_queued_rows_and_reset_starts_again(name: str) -> None:
    s = stream(name)
    t = table(SCHEMA, connector="memory", name=name)
    memory_connector = get_connector("memory")
    assert not memory_connector.is_bounded(t)
    src = open_source(name, batch_size=10)
    s.push([{"id": 1}])
    s.end()
    assert memory_connector.is_bounded(t)
    with pytest.raises(ExecError, match="has ended"):
        s.push([{"id": 2}])
    assert [b.num_rows for b in read_batches(src)] == [1]
    assert src.read() is None
    s.reset()
    assert not s.ended and s.schema is None
    assert not memory_connector.is_bounded(t)
    s.push([{"id": 3}])
    assert src.read().column("id").to_pylist() == [3]  # an open source starts again
    assert src.read().num_rows == 0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_instances_take_every_push_once(name: str, n: int) -> None:
    s = stream(name)
    for k in range(7):
        s.push([{"id": 10 * k + j} for j in range(k + 1)])
    s.end()
    parts = []
    for i in range(n):
        batches = read_batches(open_source(name, instance=i, parallelism=n))
        parts.append([x for b in batches for x in b.column("id").to_pylist()])
    assert Counter(i for p in parts for i in p) == Counter(
        10 * k + j for k in range(7) for j in range(k + 1)
    )
    assert all(parts)


def test_position_and_seek_resume_inside_a_push(name: str) -> None:
    s = stream(name)
    s.push([{"id": i} for i in range(5)])
    s.push([{"id": i} for i in range(5, 8)])
    s.advance_watermark(42)
    s.end()
    first = open_source(name, batch_size=2)
    head = read_batches(first, limit=2)
    position = json.loads(json.dumps(first.position()))
    assert position == {"push": 0, "row": 4}
    second = open_source(name, batch_size=2)
    second.seek(position)
    assert second.watermark() is None
    rest = read_batches(second)
    assert [i for b in head + rest for i in b.column("id").to_pylist()] == list(range(8))
    assert second.watermark() == 42


def test_pushing_from_another_thread_while_reading(name: str) -> None:
    s = stream(name, schema=SCHEMA)
    src = open_source(name, batch_size=1000)
    pushes = [list(range(100 * k, 100 * k + 1 + k % 7)) for k in range(300)]

    def feed() -> None:
        for ids in pushes:
            s.push(pa.table({"id": ids, "name": [None] * len(ids), "ts": [0] * len(ids)}))
        s.end()

    writer = threading.Thread(target=feed)
    writer.start()
    got = []
    while (batch := src.read()) is not None:
        if batch.num_rows:
            got.append(batch.column("id").to_pylist())
    writer.join()
    assert got == pushes  # in order, one batch per push


def test_sink_keeps_every_batch_with_its_changelog_column(name: str) -> None:
    connector = get_connector("memory")
    t = table(SCHEMA.remove(2), connector="memory", name=name)
    assert connector.accepts_updates(t)
    assert connector.guarantee() == "at-least-once"
    assert connector.describe(t) == f"memory(name={name})"
    sink = connector.create_sink(t, SinkContext())
    sink.open()
    first = pa.record_batch({"id": [1, 2], "name": ["a", "b"], "_op": pa.array([0, 0], pa.int8())})
    second = pa.record_batch({"id": [1], "name": ["a"], "_op": pa.array([3], pa.int8())})
    sink.write(first)
    sink.write(second)
    sink.close()
    assert sink.counters == {"rows_written": 3}
    assert stream(name).sink_batches == [first, second]
    assert stream(name).table().to_pydict() == {
        "id": [1, 2, 1],
        "name": ["a", "b", "a"],
        "_op": [0, 0, 3],
    }
    assert MemoryStream("never-written").table().num_rows == 0


def test_name_is_required() -> None:
    with pytest.raises(ConfigError, match="needs option 'name'"):
        get_connector("memory").create_sink(table(SCHEMA, connector="memory"), SinkContext())


def test_a_job_reads_and_writes_memory_streams(name: str) -> None:
    session = streamsql.connect()
    session.execute(
        f"""
        CREATE TABLE bids (id BIGINT, name STRING, ts TIMESTAMP(3),
                           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
            WITH ('connector' = 'memory', 'name' = '{name}');
        CREATE TABLE counts (name STRING, n BIGINT)
            WITH ('connector' = 'memory', 'name' = '{name}-out');
        """
    )
    source_stream = stream(name)

    def feed() -> None:
        for k in range(4):
            source_stream.push([{"id": k, "name": "ab"[k % 2], "ts": 1000 * k}])
        source_stream.end()

    writer = threading.Thread(target=feed)
    writer.start()
    result = session.execute("INSERT INTO counts SELECT name, COUNT(*) FROM bids GROUP BY name")
    writer.join()
    assert result.rows_read == 4
    out = stream(f"{name}-out")
    assert final_table(out.table()).sort_by("name").to_pydict() == {
        "name": ["a", "b"],
        "n": [2, 2],
    }
    out.reset()


@pytest.mark.parametrize("module", [memory, fs_monitor, base])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]
