"""The checkpoint store: what it writes is read back whole, old checkpoints go, savepoints
stay, and a damaged, truncated or foreign store is reported instead of misread.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from streamsql import duck
from streamsql.checkpoint.store import FILE_NAME, CheckpointError, CheckpointStore

TABLES = {
    ("WindowAggregate", 0, "partials"): pa.table({"k": [1, 2], "n": [3, 4]}),
    ("WindowAggregate", 1, "partials"): pa.table({"k": [5], "n": [6]}),
}
MANIFEST = {"sources": {"Scan": {"positions": {"0": {"row": 12}}}}}


def write(store: CheckpointStore, n: int, kind: str = "checkpoint", job: str = "j-1") -> None:
    store.write(n, kind, job, "f00d", "EXACTLY_ONCE", MANIFEST, TABLES, 1.5, retain=2)


def test_a_checkpoint_reads_back_as_written(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, store.next_id())
    back = store.read(1)
    assert back.manifest == MANIFEST
    assert back.info.kind == "checkpoint" and back.info.fingerprint == "f00d"
    assert back.info.state_rows == 3
    assert {k: t.to_pydict() for k, t in back.tables.items()} == {
        k: t.to_pydict() for k, t in TABLES.items()
    }
    assert store.next_id() == 2


def test_old_checkpoints_go_and_savepoints_stay(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1, "savepoint")
    for n in range(2, 6):
        write(store, n)
    write(store, 6, job="j-2")  # another job's are its own
    assert [(c.id, c.kind) for c in store.list("j-1")] == [
        (1, "savepoint"),
        (4, "checkpoint"),
        (5, "checkpoint"),
    ]
    assert store.latest("j-2").id == 6
    (left,) = duck.run(store.con, "SELECT count(DISTINCT checkpoint) FROM streamsql_state")[0]
    assert left == 4  # 1, 4, 5 and 6: the state of dropped checkpoints went with them
    assert sorted(p.name for p in tmp_path.glob("chk-*")) == ["chk-1", "chk-4", "chk-5", "chk-6"]


def test_the_store_survives_a_reopen(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1)
    job_id = store.job_id
    store.close()
    again = CheckpointStore(tmp_path)
    assert again.job_id == job_id and again.latest("j-1").id == 1


def test_a_damaged_state_blob_is_reported(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1)
    ((file,),) = duck.run(store.con, "SELECT file FROM streamsql_state WHERE instance = 1")
    with open(tmp_path / "chk-1" / file, "ab") as f:
        f.write(b"\x00")
    with pytest.raises(CheckpointError, match=r"checkpoint 1 .* is damaged \(state of .*#1"):
        store.read(1)


def test_a_missing_state_file_is_reported(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1)
    ((file,),) = duck.run(store.con, "SELECT file FROM streamsql_state WHERE instance = 0")
    (tmp_path / "chk-1" / file).unlink()
    with pytest.raises(CheckpointError, match=r"checkpoint 1 .* is damaged \(state of .*#0"):
        store.read(1)


def test_state_files_of_an_unfinished_checkpoint_are_removed_on_open(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1)
    store.close()
    (tmp_path / "chk-2").mkdir()  # a job died while writing checkpoint 2
    (tmp_path / "chk-2" / "0.arrow").write_bytes(b"half")
    CheckpointStore(tmp_path).read(1)
    assert sorted(p.name for p in tmp_path.glob("chk-*")) == ["chk-1"]


def test_a_changed_manifest_is_reported(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1)
    duck.run(store.con, "UPDATE streamsql_checkpoints SET manifest = replace(manifest, '12', '13')")
    with pytest.raises(CheckpointError, match="its manifest"):
        store.read(1)


def test_a_truncated_store_is_reported(tmp_path):
    store = CheckpointStore(tmp_path)
    for n in range(1, 4):
        write(store, n)
    store.close()
    path = tmp_path / FILE_NAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cannot be read") as caught:
        CheckpointStore(tmp_path)
    assert "damaged" in (caught.value.hint or "")


def test_a_store_of_another_format_is_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    duck.run(store.con, "UPDATE streamsql_meta SET value = '99' WHERE key = 'format'")
    store.close()
    with pytest.raises(
        CheckpointError, match="format 99; this version of streamsql reads format 2"
    ):
        CheckpointStore(tmp_path)


def test_an_unknown_checkpoint_names_those_there_are(tmp_path):
    store = CheckpointStore(tmp_path)
    write(store, 1)
    with pytest.raises(CheckpointError, match="no checkpoint 7") as caught:
        store.read(7)
    assert caught.value.hint == "checkpoints there: 1"


def test_a_reopened_store_keeps_as_many_as_retained(tmp_path):
    """A restarted job goes on with the checkpoints of the run before: it keeps ``retain``
    of them in all, its own first one counted once.
    """
    store = CheckpointStore(tmp_path)
    write(store, 1)
    store.close()
    again = CheckpointStore(tmp_path)
    write(again, 2)
    assert [c.id for c in again.list("j-1")] == [1, 2]
    write(again, 3, "final")
    assert [(c.id, c.kind) for c in again.list("j-1")] == [(2, "checkpoint"), (3, "final")]
