"""Deciding whether a job takes checkpoints and what it restores first.

A job takes checkpoints when its session has a state directory and the job writes into
tables (``INSERT INTO``; a SELECT's rows go to the caller and a materialized view lives in
the session's database: neither is checkpointed). On
start it restores the latest checkpoint of the same job of the script (or the one asked
for), after checking that the checkpoint is of the same query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamsql.checkpoint.coordinator import DEFAULT_INTERVAL_MS, Coordinator
from streamsql.checkpoint.identity import fingerprint, operator_ids
from streamsql.checkpoint.store import (
    Checkpoint,
    CheckpointError,
    CheckpointInfo,
    CheckpointStore,
)
from streamsql.config import INTERVAL_KEY, checkpoint_interval
from streamsql.errors import ConfigError
from streamsql.physical.explain import Checkpointing
from streamsql.plan.nodes import Collect, Sink, walk

if TYPE_CHECKING:
    from streamsql.config import Settings
    from streamsql.plan.nodes import PlanNode
    from streamsql.runtime.job import Job


@dataclass
class RestoreRequest:
    """What the user asked to restore: a checkpoint id (None: the latest of each job), and
    whether a changed query may take the state of its unchanged operators.
    """

    checkpoint: int | None = None
    allow_changed_query: bool = False
    used: bool = False  # the explicit checkpoint went to a job already


def attach(
    job: Job,
    roots: tuple[PlanNode, ...],
    settings: Settings,
    store: CheckpointStore | None,
    request: RestoreRequest,
) -> None:
    """Give ``job`` its coordinator and the checkpoint to restore, when it takes any."""
    if store is None:
        if settings[INTERVAL_KEY]:
            raise ConfigError(
                "checkpoints need a state directory to be written to",
                option=INTERVAL_KEY,
                hint="streamsql run --state-dir DIR, or streamsql.connect(state_dir=DIR)",
            )
        return
    nodes = walk(roots)
    if any(isinstance(n, Collect) for n in nodes):
        return  # a SELECT's rows go to the caller: nothing to resume into
    if any(isinstance(n, Sink) and n.table.connector.name == "materialized-view" for n in nodes):
        return  # a materialized view is kept in the session's database, not checkpointed
    ids = operator_ids(roots)
    job.operator_ids = ids
    job.job_id = f"{store.job_id}-{job.name}"
    printed = fingerprint(roots)
    job.coordinator = Coordinator(job.name, store, printed, ids, settings)
    if job.coordinator.mode == "AT_MOST_ONCE":
        _read_ahead(job, store)
        return
    checkpoint = _chosen(store, job.name, request)
    if checkpoint is None:
        return
    if checkpoint.info.fingerprint != printed and not request.allow_changed_query:
        raise CheckpointError(
            f"the query of job '{job.name}' changed since checkpoint {checkpoint.info.id} "
            "was taken, so its state may not fit",
            hint="run the query it was taken with, use a new --state-dir, or pass "
            "--allow-query-change to restore the state of the operators that did not change",
        )
    job.restore_from = checkpoint


def checkpointing(settings: Settings, has_state_dir: bool) -> Checkpointing | None:
    """How jobs of a session take checkpoints, as EXPLAIN states it (None: they take none)."""
    if not has_state_dir:
        return None
    ms, rows = checkpoint_interval(settings[INTERVAL_KEY])
    if ms is None and rows is None:
        ms = DEFAULT_INTERVAL_MS
    every = [f"{ms / 1000:g} s" if ms else "", f"{rows:,} rows" if rows else ""]
    return Checkpointing(
        settings["execution.checkpointing.mode"], "every " + " or ".join(e for e in every if e)
    )


def _read_ahead(job: Job, store: CheckpointStore) -> None:
    """At most once: go on after where the sources had read to, without state."""
    sources = store.read_positions(job.name)
    if sources:
        info = CheckpointInfo(0, "read positions", job.name, "", "AT_MOST_ONCE", None, 0, 0, 0)
        job.restore_from = Checkpoint(info, {"sources": sources}, {})
        job.restore_state = False


def _chosen(store: CheckpointStore, job: str, request: RestoreRequest) -> Checkpoint | None:
    if request.checkpoint is not None and not request.used:
        request.used = True
        return store.read(request.checkpoint)
    latest = store.latest(job)
    return store.read(latest.id) if latest is not None else None
