"""Processing time: switching the scan under a window onto its PROCTIME() column.

A table's ``pt AS PROCTIME()`` column is a processing-time attribute. When a window's
DESCRIPTOR names it, the scan that produces it runs on processing time: it stamps each batch
with the clock, and its watermark is the clock (see ``ScanOperator``). Only a column that
reaches the window unchanged, through projections and filters, keeps that meaning: once it is
aggregated or computed upon it is a plain timestamp, as in Flink.
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from streamsql.plan.nodes import Filter, PlanNode, Project, Scan


def on_processing_time(node: PlanNode, column: str) -> PlanNode | None:
    """``node`` with the scan of its processing-time attribute ``column`` switched to
    processing time, or None when ``column`` is not such an attribute of ``node``.
    """
    match node:
        case Scan():
            if column in node.columns and node.table.proctime_attribute == column:
                return node if node.proctime else dataclasses.replace(node, proctime=True)
        case Filter():
            inner = on_processing_time(node.input, column)
            return None if inner is None else node.with_inputs(inner)
        case Project():
            source = dict(node.exprs).get(column)
            if isinstance(source, exp.Column):
                inner = on_processing_time(node.input, source.name)
                return None if inner is None else node.with_inputs(inner)
    return None


def proctime_columns(node: PlanNode) -> list[str]:
    """The processing-time attributes ``node`` passes on unchanged (for error hints)."""
    return [c for c in node.schema.names if on_processing_time(node, c) is not None]
