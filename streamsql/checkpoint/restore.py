"""Restoring a job from a checkpoint: sinks repaired, operator state handed back (spread
by key over a new parallelism), watermarks and source positions set.

Order matters and the executor follows it: ``recover_sinks`` before any sink opens (it
publishes what the checkpoint's sinks pre-committed and discards anything written after),
``restore_instances`` after every chain has opened and before any input moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamsql.checkpoint.store import Checkpoint
from streamsql.plan.nodes import Sink
from streamsql.runtime.snapshot import OperatorSnapshot, RestoreError, redistribute
from streamsql.runtime.timeutil import MIN_WATERMARK

if TYPE_CHECKING:
    from streamsql.physical.graph import JobGraph
    from streamsql.runtime.job import Instance


def recover_sinks(
    graph: JobGraph, checkpoint: Checkpoint | None, ids: dict[int, str], job_id: str
) -> None:
    """Publish the pre-committed output the checkpoint names (none: no checkpoint yet) and
    discard the rest, once per sink table of the job.
    """
    sinks = checkpoint.manifest.get("sinks", {}) if checkpoint is not None else {}
    done: set[str] = set()
    for task in graph.tasks:
        for node in task.nodes:
            uid = ids.get(id(node), "")
            if not isinstance(node, Sink) or uid in done:
                continue
            done.add(uid)
            saved = sinks.get(uid, {}).get("handles", {})
            handles = [h for _, h in sorted(saved.items(), key=_by_index)]
            node.table.connector.recover_sink(node.table.context, job_id, handles)


def restore_instances(
    instances: list[Instance],
    checkpoint: Checkpoint,
    ids: dict[int, str],
    max_parallelism: int,
    with_state: bool = True,
) -> None:
    """Hand every operator instance its state and watermark, and every source instance its
    position. ``with_state`` False (at-most-once): positions only.
    """
    manifest = checkpoint.manifest
    operators = manifest.get("operators", {})
    tasks = manifest.get("tasks", {})
    sources = manifest.get("sources", {})
    same_shape = all(
        tasks.get(ids[id(inst.task.head)], {}).get("parallelism") == inst.task.parallelism
        for inst in instances
    )
    for inst in instances:
        head = ids[id(inst.task.head)]
        if inst.reader is not None and head in sources:
            _seek(inst, sources[head], head)
        if not with_state:
            continue
        for node, op, ctx in zip(inst.task.nodes, inst.chain.ops, inst.chain.contexts, strict=True):
            uid = ids[id(node)]
            saved = operators.get(uid)
            if saved is None:
                continue
            old_p = int(saved["parallelism"])
            parts = [saved["instances"].get(str(i)) for i in range(old_p)]
            marks = [p["watermark"] for p in parts if p is not None and "watermark" in p]
            if marks:
                wm = marks[0] if old_p == inst.task.parallelism else min(marks)
                ctx.watermark = ctx.metrics.watermark = wm
            old = [_snapshot(checkpoint, uid, i, p) for i, p in enumerate(parts)]
            label = f"{node.name} ({uid})"
            snap, values = redistribute(
                old, inst.index, inst.task.parallelism, max_parallelism, label
            )
            if snap is not None:
                op.restore(snap, values)
        task = tasks.get(head, {})
        mine = task.get("instances", {}).get(str(inst.index)) if same_shape else None
        low = _task_watermark(task) if not same_shape else None
        wm = mine["watermark"] if mine else low
        if wm is None:
            continue
        inst.watermark = wm
        for key in inst.input_watermarks:
            saved_input = (mine or {}).get("inputs", {}).get(f"{key[0]}:{key[1]}")
            inst.input_watermarks[key] = saved_input if saved_input is not None else wm


def _seek(inst: Instance, saved: dict[str, Any], head: str) -> None:
    positions = saved.get("positions", {})
    old_p = int(saved.get("parallelism", len(positions)))
    if old_p != inst.task.parallelism:
        raise RestoreError(
            f"source '{saved.get('table')}' was read by {old_p} instance(s) when the "
            f"checkpoint was taken and by {inst.task.parallelism} now; a source's "
            "positions cannot be spread over another number of readers",
            hint="restore with the table's 'scan.parallelism' of the checkpoint",
        )
    position = positions.get(str(inst.index))
    assert inst.reader is not None and inst.scan is not None
    if position is not None:
        inst.reader.open()
        inst.reader.seek(position)
    mark = saved.get("watermarks", {}).get(str(inst.index))
    if mark is not None and mark > MIN_WATERMARK:
        inst.scan.watermark = mark


def _snapshot(checkpoint: Checkpoint, uid: str, index: int, part: dict | None):
    if part is None or "tables" not in part:
        return None
    tables = {name: checkpoint.tables[(uid, index, name)] for name in part["tables"]}
    keys = {k: tuple(v) for k, v in part.get("keys", {}).items()}
    return OperatorSnapshot(tables, keys, part.get("values", {}))


def _task_watermark(task: dict[str, Any]) -> int | None:
    marks = [p["watermark"] for p in task.get("instances", {}).values()]
    return min(marks) if marks else None


def _by_index(item: tuple[str, Any]) -> int:
    return int(item[0])
