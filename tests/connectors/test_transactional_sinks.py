"""Two-phase-commit sinks (exactly-once checkpoints): nothing is visible before the commit,
commits are idempotent and cumulative, and after a crash ``recover_sink`` publishes what the
restored checkpoint pre-committed and discards everything written after it.

A crash is simulated by dropping the sink object without closing it.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql import duck
from streamsql.connectors import duckdb_table, get_connector
from streamsql.connectors.base import Sink, SinkContext, TableContext
from streamsql.connectors.blackhole import BlackholeSink
from streamsql.connectors.duckdb_table import STAGING, DuckDBSink, _shared
from streamsql.connectors.fs_sink import FileSink
from streamsql.connectors.printer import PrintSink
from tests.connectors.util import fs_table, read_rows, source

FORMATS = ["csv", "json", "parquet"]
IDS = pa.schema([("id", pa.int64())])
EO = {"exactly_once": True, "job_id": "job-7"}


def ids(start: int, n: int) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(range(start, start + n), pa.int64())})


def handle_json(handle: Any) -> Any:
    """The handle as the checkpoint stores and restores it."""
    return json.loads(json.dumps(handle))


def committing(
    sink: Sink, epoch: int, handle: Any, errors: list[BaseException]
) -> threading.Thread:
    """A commit running on another thread (as the checkpoint coordinator runs it)."""

    def commit() -> None:
        try:
            sink.commit(epoch, handle)
        except BaseException as e:  # reported by the test
            errors.append(e)

    thread = threading.Thread(target=commit)
    thread.start()
    return thread


def close_and_commit_last(
    sink: Sink, epoch: int, committers: list[threading.Thread], errors: list[BaseException]
) -> None:
    """End the input, wait for the commits still running (none may have failed), and
    commit the last epoch's output, as the final checkpoint does.
    """
    sink.close()
    final = sink.pre_commit(epoch)
    for committer in committers:
        committer.join()
    assert errors == []
    sink.commit(epoch, final)


def crash(sink: Sink) -> None:
    """The process dies: the sink is neither flushed nor closed."""
    del sink
    gc.collect()


# -- the filesystem sink ---------------------------------------------------------------------


def fs_sink(root: Path, fmt: str, instance: int = 0, **options: str) -> FileSink:
    t = fs_table(IDS, root, fmt, **options)
    ctx = SinkContext(instance=instance, job_name="name", **EO)
    sink = get_connector("filesystem").create_sink(t, ctx)
    assert isinstance(sink, FileSink)
    sink.open()
    return sink


def visible(root: Path, fmt: str) -> list[int]:
    """The ids a reader of the directory sees (hidden files are skipped)."""
    if not root.exists():
        return []
    return sorted(r["id"] for r in read_rows(source(fs_table(IDS, root, fmt))))


def hidden(root: Path) -> list[str]:
    return sorted(n for n in os.listdir(root) if n.startswith("."))


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_are_visible_only_after_the_commit(tmp_path: Path, fmt: str) -> None:
    sink = fs_sink(tmp_path, fmt, **{"sink.rolling-policy.file-size": "1"})  # roll every write
    sink.write(ids(0, 3))
    sink.write(ids(3, 2))
    sink.flush()  # a barrier without exactly-once would publish here
    sink.write(ids(5, 1))
    assert visible(tmp_path, fmt) == []
    assert hidden(tmp_path) == [f".part-job-7-0-{n}.{fmt}.pending" for n in range(3)]
    handle = handle_json(sink.pre_commit(1))
    assert handle == {"files": [f"part-job-7-0-{n}.{fmt}" for n in range(3)]}
    assert visible(tmp_path, fmt) == []
    sink.commit(1, handle)
    assert visible(tmp_path, fmt) == list(range(6))
    assert hidden(tmp_path) == []
    assert sink.published == [str(tmp_path / f"part-job-7-0-{n}.{fmt}") for n in range(3)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_partly_written_epoch_is_never_visible(tmp_path: Path, fmt: str) -> None:
    sink = fs_sink(tmp_path, fmt)
    sink.write(ids(0, 2))
    first = sink.pre_commit(1)
    sink.write(ids(2, 2))  # epoch 2, in progress
    sink.flush()  # a barrier or stop without exactly-once would publish it
    sink.commit(1, first)
    assert visible(tmp_path, fmt) == [0, 1]
    assert hidden(tmp_path) == [f".part-job-7-0-1.{fmt}.inprogress"]


def test_close_publishes_nothing_and_the_final_commit_does(tmp_path: Path) -> None:
    sink = fs_sink(tmp_path, "csv")
    sink.write(ids(0, 2))
    h1 = sink.pre_commit(1)
    sink.write(ids(2, 2))
    sink.close()
    assert visible(tmp_path, "csv") == []
    final = sink.pre_commit(2)  # after close, as the executor does at end of input
    sink.commit(2, final)
    assert visible(tmp_path, "csv") == [0, 1, 2, 3]
    sink.commit(1, h1)  # a late commit of an earlier epoch changes nothing
    assert visible(tmp_path, "csv") == [0, 1, 2, 3]


def test_commits_are_idempotent_and_handles_cumulative(tmp_path: Path) -> None:
    sink = fs_sink(tmp_path, "json")
    sink.write(ids(0, 2))
    h1 = handle_json(sink.pre_commit(1))
    sink.write(ids(2, 1))
    h2 = handle_json(sink.pre_commit(2))  # the commit of epoch 1 has not come yet
    assert h2["files"] == [*h1["files"], "part-job-7-0-1.json"]
    sink.commit(2, h2)
    sink.commit(2, h2)
    sink.commit(1, h1)
    assert visible(tmp_path, "json") == [0, 1, 2]
    sink.write(ids(3, 1))
    h3 = sink.pre_commit(3)
    assert h3 == {"files": ["part-job-7-0-2.json"]}  # committed files are left out
    sink.commit(3, h3)
    assert visible(tmp_path, "json") == [0, 1, 2, 3]
    assert sink.pre_commit(4) == {"files": []}


@pytest.mark.parametrize("fmt", FORMATS)
def test_recovery_publishes_the_checkpoint_and_discards_the_rest(tmp_path: Path, fmt: str) -> None:
    t = fs_table(IDS, tmp_path, fmt)
    sinks = [fs_sink(tmp_path, fmt, instance=i) for i in range(2)]
    sinks[0].write(ids(0, 2))
    sinks[1].write(ids(10, 2))
    recorded = [handle_json(s.pre_commit(1)) for s in sinks]  # checkpoint 1 is recorded,
    sinks[0].write(ids(2, 2))  # but the process dies before any commit, after writing on
    sinks[0].pre_commit(2)  # and pre-committing epoch 2, whose checkpoint never completes
    sinks[1].write(ids(12, 1))
    for s in sinks:
        crash(s)
    sinks.clear()
    other = tmp_path / f".part-other-0-0.{fmt}.pending"  # another job's: left alone
    other.write_text("")
    get_connector("filesystem").recover_sink(t, "job-7", recorded)
    assert visible(tmp_path, fmt) == [0, 1, 10, 11]
    assert hidden(tmp_path) == [other.name]
    get_connector("filesystem").recover_sink(t, "job-7", recorded)  # a second recovery
    assert visible(tmp_path, fmt) == [0, 1, 10, 11]
    # the restarted job writes what came after the checkpoint
    restarted = fs_sink(tmp_path, fmt)
    restarted.write(ids(2, 2))
    restarted.close()
    restarted.commit(2, restarted.pre_commit(2))
    assert visible(tmp_path, fmt) == [0, 1, 2, 3, 10, 11]


def test_recovery_after_a_commit_that_happened_and_one_that_did_not(tmp_path: Path) -> None:
    t = fs_table(IDS, tmp_path, "csv")
    sink = fs_sink(tmp_path, "csv")
    sink.write(ids(0, 1))
    h1 = sink.pre_commit(1)
    sink.commit(1, h1)
    sink.write(ids(1, 1))
    h2 = handle_json(sink.pre_commit(2))  # checkpoint 2 recorded, its commit missed
    crash(sink)
    get_connector("filesystem").recover_sink(t, "job-7", [h2])
    assert visible(tmp_path, "csv") == [0, 1]
    get_connector("filesystem").recover_sink(t, "job-7", [handle_json(h1)])
    assert visible(tmp_path, "csv") == [0, 1]


def test_recovery_of_a_directory_never_written(tmp_path: Path) -> None:
    t = fs_table(IDS, tmp_path / "none", "csv")
    get_connector("filesystem").recover_sink(t, "job-7", [None, {"files": []}])
    assert not (tmp_path / "none").exists()


def test_job_ids_that_share_a_prefix_are_kept_apart(tmp_path: Path) -> None:
    """Job 'j' recovers; job 'j-1' (whose names start the same way) keeps its files."""
    names = [".part-j-1-0-0.csv.pending", ".part-j-0-3.csv.inprogress", ".part-j-0-4.csv.pending"]
    for name in names:
        (tmp_path / name).write_text("1\n")
    get_connector("filesystem").recover_sink(fs_table(IDS, tmp_path, "csv"), "j", [])
    assert hidden(tmp_path) == [".part-j-1-0-0.csv.pending"]


def test_numbering_goes_on_after_recovered_files(tmp_path: Path) -> None:
    sink = fs_sink(tmp_path, "csv")
    sink.write(ids(0, 1))
    h1 = handle_json(sink.pre_commit(1))
    crash(sink)
    get_connector("filesystem").recover_sink(fs_table(IDS, tmp_path, "csv"), "job-7", [h1])
    again = fs_sink(tmp_path, "csv")
    again.write(ids(1, 1))
    again.commit(1, again.pre_commit(1))
    assert sorted(os.listdir(tmp_path)) == ["part-job-7-0-0.csv", "part-job-7-0-1.csv"]


def test_files_commit_on_other_threads_while_writing(tmp_path: Path) -> None:
    sink = fs_sink(tmp_path, "csv", **{"sink.rolling-policy.file-size": "20"})
    committers: list[threading.Thread] = []
    errors: list[BaseException] = []
    for epoch in range(1, 30):
        for n in range(5):
            sink.write(ids(epoch * 100 + n * 3, 3))
        committers.append(committing(sink, epoch, sink.pre_commit(epoch), errors))
    close_and_commit_last(sink, 30, committers, errors)
    want = sorted(e * 100 + i for e in range(1, 30) for i in range(15))
    assert visible(tmp_path, "csv") == want
    assert hidden(tmp_path) == []


def test_without_exactly_once_files_are_published_as_before(tmp_path: Path) -> None:
    t = fs_table(IDS, tmp_path, "csv")
    sink = get_connector("filesystem").create_sink(t, SinkContext(job_name="name", job_id="x"))
    sink.open()
    sink.write(ids(0, 2))
    assert sink.pre_commit(1) is None
    sink.flush()
    assert sorted(os.listdir(tmp_path)) == ["part-name-0-0.csv"]
    sink.write(ids(2, 1))
    sink.close()
    assert sorted(os.listdir(tmp_path)) == ["part-name-0-0.csv", "part-name-0-1.csv"]


# -- the DuckDB sink -------------------------------------------------------------------------

SCHEMA = pa.schema([("k", pa.int64()), ("v", pa.string())])
KINDS = {"+I": 0, "-U": 1, "+U": 2, "-D": 3}


def dtable(path: Path, key: tuple[str, ...] = ("k",)) -> TableContext:
    options = {"connector": "duckdb", "path": str(path), "table": "out"}
    return TableContext("t", SCHEMA, options, primary_key=key)


def changes(*rows: tuple[str, int, str]) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "k": pa.array([r[1] for r in rows], pa.int64()),
            "v": pa.array([r[2] for r in rows], pa.string()),
            "_op": pa.array([KINDS[r[0]] for r in rows], pa.int8()),
        }
    )


def db_sink(t: TableContext, instance: int = 0, job_id: str = "job-7") -> DuckDBSink:
    ctx = SinkContext(instance=instance, exactly_once=True, job_id=job_id)
    sink = get_connector("duckdb").create_sink(t, ctx)
    assert isinstance(sink, DuckDBSink)
    sink.open()
    return sink


def query(path: Path, sql: str) -> list[tuple]:
    lease = duckdb_table.Lease(str(path))
    try:
        return duck.run(lease.cursor, sql)
    finally:
        lease.close()


def rows(t: TableContext) -> list[tuple]:
    return sorted(query(Path(t.options["path"]), "SELECT k, v FROM out"))


def staged(path: Path) -> int:
    return query(path, f"SELECT count(*) FROM {STAGING}")[0][0]


def oracle(tmp: Path, key: tuple[str, ...], batches: list[pa.RecordBatch]) -> list[tuple]:
    """The table the sink makes of the batches without exactly-once (one by one)."""
    t = dtable(tmp / "oracle.duckdb", key)
    sink = get_connector("duckdb").create_sink(t, SinkContext())
    for b in batches:
        sink.write(b)
    sink.close()
    return rows(t)


@pytest.fixture(autouse=True)
def no_connections_left() -> Iterator[None]:
    yield
    gc.collect()
    assert _shared == {}, "a DuckDB connection was left open"


@pytest.mark.parametrize("key", [("k",), ()])
def test_rows_are_applied_only_by_the_commit(tmp_path: Path, key: tuple[str, ...]) -> None:
    t = dtable(tmp_path / "db", key)
    batches = [changes(("+I", 1, "a"), ("+I", 2, "b")), changes(("+I", 3, "c"))]
    if key:
        batches.append(changes(("-U", 1, "a"), ("+U", 1, "A"), ("-D", 2, "b")))
    sink = db_sink(t)
    for b in batches:
        sink.write(b)
    assert rows(t) == []
    handle = handle_json(sink.pre_commit(1))
    assert rows(t) == []
    sink.commit(1, handle)
    want = oracle(tmp_path, key, batches)
    assert rows(t) == want == ([(1, "A"), (3, "c")] if key else [(1, "a"), (2, "b"), (3, "c")])
    assert staged(tmp_path / "db") == 0
    sink.commit(1, handle)  # idempotent: an append-only table gets no second copy
    assert rows(t) == want
    sink.close()


def test_batches_with_and_without_changelog_kinds(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    batches = [
        changes(("+I", 1, "a"), ("+I", 2, "b")).drop_columns(["_op"]),
        changes(("-D", 1, "a"), ("+U", 2, "B")),
        changes(("+I", 1, "c")).drop_columns(["_op"]),
    ]
    sink = db_sink(t)
    for b in batches:
        sink.write(b)
    sink.commit(1, sink.pre_commit(1))
    sink.close()
    assert rows(t) == oracle(tmp_path, ("k",), batches) == [(1, "c"), (2, "B")]


def test_a_table_without_the_key_constraint(tmp_path: Path) -> None:
    query(tmp_path / "db", "CREATE TABLE out (k BIGINT, v VARCHAR)")
    t = dtable(tmp_path / "db")
    batches = [changes(("+I", 1, "a"), ("+I", 2, "b")), changes(("-D", 1, "a"), ("+U", 2, "B"))]
    sink = db_sink(t)
    for b in batches:
        sink.write(b)
    sink.close()
    sink.commit(1, sink.pre_commit(1))
    assert rows(t) == oracle(tmp_path, ("k",), batches) == [(2, "B")]


def test_close_applies_nothing_and_handles_are_cumulative(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    sink = db_sink(t)
    sink.write(changes(("+I", 1, "a")))
    h1 = handle_json(sink.pre_commit(1))
    sink.write(changes(("+U", 1, "b"), ("+I", 2, "c")))
    sink.close()
    assert rows(t) == []
    h2 = handle_json(sink.pre_commit(2))
    sink.commit(2, h2)  # covers epoch 1, whose commit never came
    assert rows(t) == [(1, "b"), (2, "c")]
    sink.commit(1, h1)  # late: must not bring back 'a'
    assert rows(t) == [(1, "b"), (2, "c")]


@pytest.mark.parametrize("key", [("k",), ()])
def test_recovery_applies_the_checkpoint_and_discards_the_rest(
    tmp_path: Path, key: tuple[str, ...]
) -> None:
    t = dtable(tmp_path / "db", key)
    e1 = [[changes(("+I", 1, "a"))], [changes(("+I", 2, "b"))]]  # per instance
    after = [[changes(("+I", 3, "c"))], [changes(("+I", 4, "d"))]]
    sinks = [db_sink(t, i) for i in range(2)]
    for sink, batches in zip(sinks, e1, strict=True):
        for b in batches:
            sink.write(b)
    recorded = [handle_json(s.pre_commit(1)) for s in sinks]
    for sink, batches in zip(sinks, after, strict=True):
        for b in batches:
            sink.write(b)
    sinks[0].pre_commit(2)  # epoch 2 is staged but its checkpoint never completes
    for s in sinks:
        crash(s)
    sinks.clear()
    bystander = db_sink(t, job_id="other")  # another job staging into the same database
    bystander.write(changes(("+I", 9, "z")))
    bystander.close()
    get_connector("duckdb").recover_sink(t, "job-7", recorded)
    assert rows(t) == [(1, "a"), (2, "b")]
    assert staged(tmp_path / "db") == 1  # only the other job's row
    get_connector("duckdb").recover_sink(t, "job-7", recorded)  # twice: nothing changes
    assert rows(t) == [(1, "a"), (2, "b")]
    restarted = db_sink(t)
    for batches in after:
        for b in batches:
            restarted.write(b)
    restarted.close()
    restarted.commit(2, restarted.pre_commit(2))
    assert rows(t) == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


def test_recovery_of_a_database_never_written(tmp_path: Path) -> None:
    get_connector("duckdb").recover_sink(dtable(tmp_path / "none.duckdb"), "job-7", [None])
    assert not (tmp_path / "none.duckdb").exists()
    query(tmp_path / "db", "CREATE TABLE out (k BIGINT PRIMARY KEY, v VARCHAR)")
    get_connector("duckdb").recover_sink(dtable(tmp_path / "db"), "job-7", [])
    assert query(
        tmp_path / "db", f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{STAGING}'"
    ) == [(0,)]


def test_rows_commit_on_other_threads_while_writing(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    sink = db_sink(t)
    batches, committers, errors = [], [], []
    for epoch in range(1, 25):
        for n in range(4):
            k = (epoch * 7 + n) % 10
            batches.append(changes(("+U", k, f"{epoch}.{n}"), ("-D", (k + 3) % 10, "")))
            sink.write(batches[-1])
        committers.append(committing(sink, epoch, sink.pre_commit(epoch), errors))
    close_and_commit_last(sink, 25, committers, errors)
    assert rows(t) == oracle(tmp_path, ("k",), batches)
    assert staged(tmp_path / "db") == 0


def test_without_exactly_once_batches_are_applied_at_once(tmp_path: Path) -> None:
    t = dtable(tmp_path / "db")
    sink = get_connector("duckdb").create_sink(t, SinkContext(job_id="job-7"))
    sink.write(changes(("+I", 1, "a")))
    assert rows(t) == [(1, "a")]
    assert sink.pre_commit(1) is None
    sink.close()
    assert query(
        tmp_path / "db", f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{STAGING}'"
    ) == [(0,)]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(list(KINDS)), st.integers(0, 4), st.sampled_from("abc")),
        min_size=1,
        max_size=30,
    ),
    cuts=st.lists(st.integers(0, 30), max_size=5),
    barriers=st.lists(st.integers(0, 8), max_size=4),
    crash_at=st.integers(0, 8),
    missed_commit=st.booleans(),
    apply_rows=st.sampled_from([1, 2, 1000]),
    enforced=st.booleans(),
)
def test_a_crash_anywhere_gives_the_uninterrupted_table(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    ops: list[tuple[str, int, str]],
    cuts: list[int],
    barriers: list[int],
    crash_at: int,
    missed_commit: bool,
    apply_rows: int,
    enforced: bool,
) -> None:
    """Batches with checkpoints after some of them; the job dies after batch ``crash_at``
    and restarts from its last completed checkpoint (whose commit may have been missed),
    replaying the batches after it. The table must equal that of an uninterrupted run,
    whether DuckDB enforces the key or not.
    """
    monkeypatch.setattr(duckdb_table, "APPLY_ROWS", apply_rows)
    tmp = tmp_path_factory.mktemp("crash")
    bounds = sorted({0, len(ops), *(c for c in cuts if c < len(ops))})
    batches = [changes(*ops[a:b]) for a, b in itertools.pairwise(bounds)]
    crash_at = min(crash_at, len(batches))
    if not enforced:
        query(tmp / "db", "CREATE TABLE out (k BIGINT, v VARCHAR)")
    t = dtable(tmp / "db")
    sink = db_sink(t)
    recorded: tuple[int, Any] = (0, None)  # (batches covered, handle) of the last checkpoint
    for i, batch in enumerate(batches[:crash_at], 1):
        sink.write(batch)
        if i in barriers:
            handle = handle_json(sink.pre_commit(i))
            recorded = (i, handle)
            if not missed_commit:
                sink.commit(i, handle)
    crash(sink)
    get_connector("duckdb").recover_sink(t, "job-7", [recorded[1]])
    restarted = db_sink(t)
    for batch in batches[recorded[0] :]:
        restarted.write(batch)
    restarted.close()
    restarted.commit(99, restarted.pre_commit(99))
    assert rows(t) == oracle(tmp, ("k",), batches)
    assert staged(tmp / "db") == 0


def test_commits_apply_staged_batches_in_groups_of_bounded_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(duckdb_table, "APPLY_ROWS", 4)
    seqs = [(1, 2), (2, 2), (3, 5), (4, 1), (5, 1)]
    assert list(duckdb_table._groups(seqs)) == [(1, 2), (3, 3), (4, 5)]


# -- print and blackhole ---------------------------------------------------------------------


def test_print_and_blackhole_are_at_least_once() -> None:
    for cls in (PrintSink, BlackholeSink):
        assert cls.guarantee == "at-least-once"
        assert not cls.transactional
    assert FileSink.transactional and DuckDBSink.transactional
    assert get_connector("filesystem").guarantee().startswith("exactly-once")
    assert get_connector("duckdb").guarantee().startswith("exactly-once")
