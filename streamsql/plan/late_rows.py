"""The late-row side output: binds 'table.exec.late-rows.sink' to a table and to the windowed
nodes of a job.

Every windowed node (a node with a ``late_sink`` field: WindowAggregate, WindowTopN, ...)
gets a :class:`LateSink` naming the table and the table's columns its input supplies. A
node offers its input columns and also those a Project/Filter chain right below it drops
but could pass on (the binder narrows a window's rows to what an aggregate reads): the chain
is widened to carry the columns asked for, and column pruning keeps them. Two more sink
columns are filled at run time: ``watermark`` (the watermark the row missed) and
``operator`` (which operator dropped it).
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
from sqlglot import exp

from streamsql.catalog import Catalog, CatalogTable
from streamsql.config import Settings
from streamsql.errors import ConfigError, did_you_mean
from streamsql.plan.binder import implicitly_castable
from streamsql.plan.nodes import (
    WINDOW_COLUMNS,
    Filter,
    LateSink,
    PlanNode,
    Project,
    transform_up,
    walk,
)
from streamsql.types import TIME_TYPE, sql_type_name

SETTING = "table.exec.late-rows.sink"
#: Sink columns the runtime fills in, with the type of what it writes there.
SPECIAL: dict[str, pa.DataType] = {"watermark": TIME_TYPE, "operator": pa.string()}


def attach_late_sink(
    roots: tuple[PlanNode, ...], catalog: Catalog, settings: Settings
) -> tuple[PlanNode, ...]:
    """The plan with every windowed node writing its late rows to the table the setting
    names (unchanged when it names none). Raises ConfigError naming the setting when the
    table is unknown or cannot be written, or a column of it matches nothing.
    """
    name = str(settings[SETTING] or "").strip()
    if not name:
        return roots
    table = late_table(catalog, name)
    windowed = [n for n in walk(roots) if is_windowed(n)]
    if not windowed:
        return roots
    offered = [_reachable(n.inputs[0]) for n in windowed]
    for f in table.physical_schema:
        _check_column(f, table, offered)

    def attach(node: PlanNode) -> PlanNode:
        if not is_windowed(node):
            return node
        (inp,) = node.inputs
        have = _reachable(inp)
        if getattr(node, "window", None) is not None and node.window.is_session:
            have = {c: t for c, t in have.items() if c not in WINDOW_COLUMNS}  # not yet known
        cols = tuple(c for c in table.physical_schema.names if c not in SPECIAL and c in have)
        return dataclasses.replace(node, input=_widen(inp, cols), late_sink=LateSink(table, cols))

    return transform_up(roots, attach)


def is_windowed(node: PlanNode) -> bool:
    """Whether the node drops late rows (it has a ``late_sink`` field)."""
    return any(f.name == "late_sink" for f in dataclasses.fields(node))


def late_table(catalog: Catalog, name: str) -> CatalogTable:
    """The table the setting names, checked to be one a job can write to."""
    resolved = catalog.resolve(name)
    if resolved is None:
        raise ConfigError(
            f"'{SETTING}' names an unknown table '{name}'",
            option=SETTING,
            hint=did_you_mean(name, catalog.names(), "table")
            or "create it first with CREATE TABLE ... WITH ('connector' = ...)",
        )
    table = catalog.tables.get(resolved)
    if table is None or table.kind != "table":
        kind = table.kind if table is not None else "view"
        raise ConfigError(
            f"'{SETTING}' names the {kind} '{resolved}'; late rows need a table",
            option=SETTING,
        )
    if table.connector.sink_class is None:
        raise ConfigError(
            f"'{SETTING}' names table '{resolved}', whose connector "
            f"'{table.connector.name}' cannot be written to",
            option=SETTING,
            hint="use a table of a sink connector (filesystem, print, duckdb, memory, ...)",
        )
    try:
        table.validate_for("sink")
    except ConfigError as e:
        raise ConfigError(
            f"'{SETTING}' = '{resolved}': {e.message}", option=SETTING, hint=e.hint
        ) from None
    return table


def _check_column(f: pa.Field, table: CatalogTable, offered: list[dict[str, pa.DataType]]) -> None:
    if f.name in SPECIAL:
        sources = [SPECIAL[f.name]]
    else:
        sources = [o[f.name] for o in offered if f.name in o]
    if not sources:
        names = [*dict.fromkeys(c for o in offered for c in o), *SPECIAL]
        raise ConfigError(
            f"'{SETTING}': column '{f.name}' of table '{table.name}' is not a column of the "
            "rows the job's windowed operators see, nor 'watermark' or 'operator'",
            option=SETTING,
            hint=did_you_mean(f.name, names, "column"),
        )
    for src in sources:
        if not implicitly_castable(src, f.type):
            raise ConfigError(
                f"'{SETTING}': column '{f.name}' of table '{table.name}' is "
                f"{sql_type_name(f.type)} but late rows carry {sql_type_name(src)} there",
                option=SETTING,
                hint=f"declare '{f.name}' as {sql_type_name(src)}",
            )


def _reachable(node: PlanNode) -> dict[str, pa.DataType]:
    """The columns a node's rows have or could pass on from below its Project/Filter chain."""
    have = {f.name: f.type for f in node.schema}
    if isinstance(node, Project | Filter):
        for name, typ in _reachable(node.input).items():
            have.setdefault(name, typ)
    return have


def _widen(node: PlanNode, want: tuple[str, ...]) -> PlanNode:
    """``node`` rebuilt so that its rows also carry the ``want`` columns below it."""
    missing = tuple(c for c in want if c not in node.schema.names)
    if not missing:
        return node
    match node:
        case Filter():
            return node.with_inputs(_widen(node.input, missing))
        case Project():
            inner = _widen(node.input, missing)
            extra = [(c, exp.column(c, quoted=True)) for c in missing if c in inner.schema.names]
            return Project(
                inner, _input_order(node.exprs, extra, inner), parallelism=node.parallelism
            )
    return node


def _input_order(
    exprs: tuple[tuple[str, exp.Expression], ...],
    extra: list[tuple[str, exp.Expression]],
    inner: PlanNode,
) -> tuple[tuple[str, exp.Expression], ...]:
    """Columns passed through first, in the input's order, then computed ones: a widened
    projection that only passes columns on stays removable (it equals its input).
    """
    order = {name: i for i, name in enumerate(inner.schema.names)}
    passed = [(n, e) for n, e in exprs if isinstance(e, exp.Column) and e.name == n]
    computed = [(n, e) for n, e in exprs if (n, e) not in passed]
    passed = sorted(passed + extra, key=lambda p: order.get(p[0], len(order)))
    return tuple(passed + computed)
