"""Completed checkpoints in a state directory: a DuckDB database, ``checkpoints.duckdb``,
and the operators' state tables as Arrow IPC files in ``chk-<checkpoint id>/``.

A checkpoint is one row of ``streamsql_checkpoints`` (its id, kind, the query's
fingerprint, and a JSON manifest: every source instance's position, every sink instance's
pre-committed handle, every operator instance's values and watermark) and the rows of
``streamsql_state`` that name its state files. The files are written and synced first;
the rows are then written in one transaction, which is what completes the checkpoint, so a
checkpoint is either complete or absent (files no row names are removed when the store is
opened). Each file and the manifest carry a SHA-256 checksum, so a damaged one is reported,
never misread. The database's format version is checked before anything is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from streamsql import duck
from streamsql.errors import StreamSQLError

#: The layout this code writes and reads; another one is refused.
FORMAT_VERSION = 2
FILE_NAME = "checkpoints.duckdb"
#: The folder of a checkpoint's state files (``chk-<id>/<n>.arrow``), as Flink names them.
STATE_DIR_PREFIX = "chk-"
#: One line per completed checkpoint ("id kind job"), readable while a job holds the store.
LOG_NAME = "checkpoints.log"


class CheckpointError(StreamSQLError):
    """A checkpoint store that cannot be used: damaged, of another format, or missing."""

    kind = "checkpoint error"


@dataclass(frozen=True)
class CheckpointInfo:
    """One completed checkpoint, as listed."""

    id: int
    kind: str  # 'checkpoint', 'savepoint' or 'final' (end of input)
    job: str  # which job of the script: '<pipeline.name>-<n>'
    fingerprint: str
    mode: str
    completed_at: datetime
    duration_ms: float
    state_bytes: int
    state_rows: int


@dataclass
class Checkpoint:
    """A checkpoint read back: its listing, manifest and state tables."""

    info: CheckpointInfo
    manifest: dict[str, Any]
    #: (operator id, instance, table name) -> the table.
    tables: dict[tuple[str, int, str], pa.Table]
    read_ms: float = 0.0  # reading and verifying it


class CheckpointStore:
    """The checkpoints of the jobs run with one state directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.path = os.path.join(self.directory, FILE_NAME)
        self._ids: dict[str, list[int]] = {}
        try:
            self.con = duck.connect(self.path, threads=1)
            # A checkpoint of the file folds the log into it: not after every few checkpoints.
            duck.run(self.con, "SET checkpoint_threshold = '64MB'")
            self._init()
        except duck.DuckDBError as e:
            if "lock" in str(e).lower():
                raise CheckpointError(
                    f"the checkpoint store {self.path} is in use by a running job",
                    hint=f"see {os.path.join(self.directory, LOG_NAME)} for its checkpoints, or "
                    "stop it first",
                ) from None
            raise CheckpointError(
                f"the checkpoint store {self.path} cannot be read: {e}",
                hint="the file is damaged; move it away to start without state, or restore a copy",
            ) from None

    def close(self) -> None:
        self.con.close()

    # -- layout --------------------------------------------------------------------------------

    def _init(self) -> None:
        run = duck.run
        run(
            self.con,
            "CREATE TABLE IF NOT EXISTS streamsql_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        )
        found = dict(run(self.con, "SELECT key, value FROM streamsql_meta"))
        if "format" not in found:
            with duck.transaction(self.con):
                run(
                    self.con,
                    "INSERT INTO streamsql_meta VALUES ('format', ?), ('job_id', ?)",
                    [str(FORMAT_VERSION), uuid.uuid4().hex[:12]],
                )
            found = dict(run(self.con, "SELECT key, value FROM streamsql_meta"))
        elif found["format"] != str(FORMAT_VERSION):
            raise CheckpointError(
                f"the checkpoints in {self.directory} are of format {found['format']}; this "
                f"version of streamsql reads format {FORMAT_VERSION} only",
                hint="restore them with the streamsql version that wrote them, or use a new "
                "state directory",
            )
        self.job_id: str = found["job_id"]
        run(
            self.con,
            "CREATE TABLE IF NOT EXISTS streamsql_checkpoints (id BIGINT PRIMARY KEY, "
            "kind VARCHAR, job VARCHAR, fingerprint VARCHAR, mode VARCHAR, completed_at TIMESTAMP, "
            "duration_ms DOUBLE, state_bytes BIGINT, state_rows BIGINT, manifest VARCHAR, "
            "checksum VARCHAR)",
        )
        run(
            self.con,
            "CREATE TABLE IF NOT EXISTS streamsql_state (checkpoint BIGINT, operator VARCHAR, "
            "instance INTEGER, name VARCHAR, file VARCHAR, bytes BIGINT, checksum VARCHAR)",
        )
        run(
            self.con,
            "CREATE TABLE IF NOT EXISTS streamsql_read_positions (job VARCHAR, source VARCHAR, "
            "instance INTEGER, parallelism INTEGER, position VARCHAR, "
            "PRIMARY KEY (job, source, instance))",
        )
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Remove state files of checkpoints that never completed (the job died while
        writing them): no row of ``streamsql_checkpoints`` names them.
        """
        known = {r[0] for r in duck.run(self.con, "SELECT id FROM streamsql_checkpoints")}
        for name in os.listdir(self.directory):
            number = name.removeprefix(STATE_DIR_PREFIX)
            if name.startswith(STATE_DIR_PREFIX) and number.isdigit() and int(number) not in known:
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    # -- writing -------------------------------------------------------------------------------

    def _retained(self, job: str) -> list[int]:
        """The ids of ``job``'s checkpoints that retention may drop (not savepoints), oldest
        first; read once, then kept up to date by ``write``.
        """
        if job not in self._ids:
            rows = duck.run(
                self.con,
                "SELECT id FROM streamsql_checkpoints WHERE kind <> 'savepoint' AND job = ? "
                "ORDER BY id",
                [job],
            )
            self._ids[job] = [r[0] for r in rows]
        return self._ids[job]

    def next_id(self) -> int:
        (top,) = duck.run(self.con, "SELECT coalesce(max(id), 0) FROM streamsql_checkpoints")[0]
        return int(top) + 1

    def write(
        self,
        checkpoint_id: int,
        kind: str,
        job: str,
        fingerprint: str,
        mode: str,
        manifest: dict[str, Any],
        tables: dict[tuple[str, int, str], pa.Table],
        duration_ms: float,
        retain: int,
    ) -> int:
        """Record a completed checkpoint in one transaction and drop the job's ones beyond
        the ``retain`` latest (savepoints stay). Returns the bytes of state written.
        """
        folder = self._folder(checkpoint_id)
        shutil.rmtree(folder, ignore_errors=True)  # left by a run that died writing it
        os.makedirs(folder)
        rows, files = 0, []
        for n, ((op, inst, name), table) in enumerate(sorted(tables.items(), key=lambda kv: kv[0])):
            data = _ipc(table)
            file = f"{n}.arrow"
            _write_synced(os.path.join(folder, file), data)
            files.append((checkpoint_id, op, inst, name, file, data.size, _sha(data)))
            rows += table.num_rows
        _sync_dir(folder)
        size = sum(f[5] for f in files)
        text = json.dumps(manifest, sort_keys=True)
        checksum = _sha(text.encode() + "".join(f[6] for f in files).encode())
        # read before the insert below; the cache changes only once the transaction is done
        kept = [*self._retained(job), checkpoint_id] if kind != "savepoint" else []
        gone, kept = kept[:-retain], kept[-retain:]
        with duck.transaction(self.con):
            if files:
                duck.run_many(
                    self.con, "INSERT INTO streamsql_state VALUES (?, ?, ?, ?, ?, ?, ?)", files
                )
            duck.run(
                self.con,
                "INSERT INTO streamsql_checkpoints VALUES "
                "(?, ?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?)",
                [
                    checkpoint_id,
                    kind,
                    job,
                    fingerprint,
                    mode,
                    duration_ms,
                    size,
                    rows,
                    text,
                    checksum,
                ],
            )
            if gone:
                marks = ", ".join("?" * len(gone))
                duck.run(
                    self.con, f"DELETE FROM streamsql_state WHERE checkpoint IN ({marks})", gone
                )
                duck.run(self.con, f"DELETE FROM streamsql_checkpoints WHERE id IN ({marks})", gone)
        if kind != "savepoint":
            self._ids[job] = kept
        for old in gone:
            shutil.rmtree(self._folder(old), ignore_errors=True)
        with open(os.path.join(self.directory, LOG_NAME), "a", encoding="utf-8") as log:
            log.write(f"{checkpoint_id} {kind} {job}\n")
        return size

    def _folder(self, checkpoint_id: int) -> str:
        return os.path.join(self.directory, f"{STATE_DIR_PREFIX}{checkpoint_id}")

    # -- reading -------------------------------------------------------------------------------

    def list(self, job: str | None = None) -> list[CheckpointInfo]:
        """The completed checkpoints (of ``job``, or all), oldest first."""
        where, params = ("WHERE job = ?", [job]) if job is not None else ("", [])
        rows = duck.run(
            self.con,
            f"SELECT {_COLUMNS} FROM streamsql_checkpoints {where} ORDER BY id",
            params,
        )
        return [CheckpointInfo(*r) for r in rows]

    def latest(self, job: str) -> CheckpointInfo | None:
        found = self.list(job)
        return found[-1] if found else None

    def read(self, checkpoint_id: int) -> Checkpoint:
        began = time.perf_counter()
        rows = duck.run(
            self.con,
            f"SELECT {_COLUMNS}, manifest, checksum FROM streamsql_checkpoints WHERE id = ?",
            [checkpoint_id],
        )
        if not rows:
            have = ", ".join(str(c.id) for c in self.list()) or "none"
            raise CheckpointError(
                f"there is no checkpoint {checkpoint_id} in {self.directory}",
                hint=f"checkpoints there: {have}",
            )
        *head, text, checksum = rows[0]
        info = CheckpointInfo(*head)
        rows = duck.run(
            self.con,
            "SELECT operator, instance, name, file, checksum FROM streamsql_state "
            "WHERE checkpoint = ? ORDER BY operator, instance, name",
            [checkpoint_id],
        )
        folder = self._folder(checkpoint_id)
        blobs = [
            (op, inst, name, _read(os.path.join(folder, f)), sha) for op, inst, name, f, sha in rows
        ]
        # In the order ``write`` hashed them: by operator, instance and name.
        whole = _sha(text.encode() + "".join(b[4] for b in blobs).encode())
        damaged = [
            f"{op} #{inst} {name}"
            for op, inst, name, data, sha in blobs
            if data is None or _sha(data) != sha
        ]
        if damaged or whole != checksum:
            what = "state of " + ", ".join(damaged) if damaged else "its manifest"
            raise CheckpointError(
                f"checkpoint {checkpoint_id} in {self.directory} is damaged ({what} does not "
                "match its checksum)",
                hint="restore an older checkpoint with --from-checkpoint, or start without state",
            )
        tables = {(op, inst, name): _table(data) for op, inst, name, data, _ in blobs}
        read_ms = (time.perf_counter() - began) * 1000
        return Checkpoint(info, json.loads(text), tables, read_ms)

    # -- at most once: where sources have read to ------------------------------------------------

    def save_position(
        self, job: str, source: str, instance: int, parallelism: int, position: dict[str, Any]
    ) -> None:
        """Record how far a source instance has read (before its rows are processed)."""
        duck.run(
            self.con,
            "INSERT OR REPLACE INTO streamsql_read_positions VALUES (?, ?, ?, ?, ?)",
            [job, source, instance, parallelism, json.dumps(position)],
        )

    def read_positions(self, job: str) -> dict[str, dict[str, Any]]:
        """``job``'s sources as a manifest's ``sources`` entry: where each instance read to."""
        rows = duck.run(
            self.con,
            "SELECT source, instance, parallelism, position FROM streamsql_read_positions "
            "WHERE job = ?",
            [job],
        )
        out: dict[str, dict[str, Any]] = {}
        for source, instance, parallelism, position in rows:
            entry = out.setdefault(source, {"parallelism": parallelism, "positions": {}})
            entry["positions"][str(instance)] = json.loads(position)
        return out

    def delete(self, checkpoint_id: int) -> None:
        with duck.transaction(self.con):
            duck.run(self.con, "DELETE FROM streamsql_state WHERE checkpoint = ?", [checkpoint_id])
            duck.run(self.con, "DELETE FROM streamsql_checkpoints WHERE id = ?", [checkpoint_id])
        shutil.rmtree(self._folder(checkpoint_id), ignore_errors=True)


@contextlib.contextmanager
def opened(directory: str | os.PathLike[str]) -> Iterator[CheckpointStore]:
    store = CheckpointStore(directory)
    try:
        yield store
    finally:
        store.close()


_COLUMNS = "id, kind, job, fingerprint, mode, completed_at, duration_ms, state_bytes, state_rows"


def _sha(data: bytes | pa.Buffer) -> str:
    return hashlib.sha256(data).hexdigest()


def _ipc(table: pa.Table) -> pa.Buffer:
    """The table as an Arrow IPC stream, written once into a buffer of the right size."""
    size = pa.MockOutputStream()
    with pa.ipc.new_stream(size, table.schema) as writer:
        writer.write_table(table)
    buf = pa.allocate_buffer(size.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buf), table.schema) as writer:
        writer.write_table(table)
    return buf


def _write_synced(path: str, data: pa.Buffer) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path: str) -> None:
    """Make the files' names in ``path`` durable (where the platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read(path: str) -> bytes | None:
    """A state file's bytes, or None when it is missing."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
