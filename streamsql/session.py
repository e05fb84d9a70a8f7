"""The Session: the one entry point of the Python API, the CLI and the shell.

A session owns a catalog, settings and a DuckDB database for state. It parses scripts,
applies DDL and SET at once, and runs queries as jobs: a script's INSERT INTO statements
run together as one job (a source read by several of them is read once).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyarrow as pa
from sqlglot import exp

from streamsql import duck
from streamsql.catalog import Catalog, CatalogTable, TableColumn
from streamsql.changelog import final_table
from streamsql.checkpoint import setup as checkpoints
from streamsql.checkpoint.store import CheckpointStore
from streamsql.config import Settings
from streamsql.errors import BindError, PlanError, StreamSQLError
from streamsql.optimizer import Optimized, OptimizerContext, optimize
from streamsql.parser import ast, parse_script, parse_statement
from streamsql.physical.analyze import explain_analyzed
from streamsql.physical.explain import explain_physical
from streamsql.physical.graph import JobGraph
from streamsql.physical.planner import build_job_graph
from streamsql.physical.render import FORMATS, dataflow_text
from streamsql.physical.render import render as render_graph
from streamsql.plan.binder import Binder
from streamsql.plan.changelog import OP, OP_TYPE
from streamsql.plan.explain import explain_logical
from streamsql.plan.late_rows import attach_late_sink
from streamsql.plan.nodes import PlanNode, Project, Scan, Sink
from streamsql.plan.ranking import check_bounded
from streamsql.runtime.driver import Driver
from streamsql.runtime.job import Job, JobResult
from streamsql.runtime.operators import ResultBuffer
from streamsql.state import StateStore
from streamsql.state.materialized import MaterializedTable, MaterializedViewConnector
from streamsql.types import sql_type_name


@dataclass
class Planned:
    """A job ready to run: the bound roots, the optimized plan and the job graph."""

    bound: tuple[PlanNode, ...]
    optimized: Optimized
    graph: JobGraph

    @property
    def roots(self) -> tuple[PlanNode, ...]:
        return self.optimized.roots

    @property
    def bounded(self) -> bool:
        return all(r.bounded for r in self.roots)

    @property
    def reads_unbounded(self) -> bool:
        """Whether a source is unbounded: even a bounded result (``LIMIT``) then comes
        over time, as the source delivers rows, rather than at once.
        """
        return any(not scan.bounded for scan in _scans(self.roots))


@dataclass
class Output:
    """What one statement of a script produced, for printing: a table or a message."""

    statement: ast.Statement
    table: pa.Table | None = None
    message: str | None = None


@dataclass
class ExecuteResult:
    """What ``Session.execute`` did: the job it ran (if any) and the statements' outputs."""

    job: JobResult | None = None
    outputs: list[Output] = field(default_factory=list)

    @property
    def counters(self) -> list[dict[str, object]]:
        return self.job.counters() if self.job else []

    @property
    def late_rows_dropped(self) -> int:
        return self.job.late_rows_dropped if self.job else 0

    @property
    def late_rows_routed(self) -> int:
        return self.job.late_rows_routed if self.job else 0

    @property
    def rows_read(self) -> int:
        return self.job.rows_read if self.job else 0

    @property
    def rows_written(self) -> int:
        return self.job.rows_written if self.job else 0

    @property
    def elapsed_s(self) -> float:
        return self.job.elapsed_s if self.job else 0.0

    def __str__(self) -> str:
        return self.job.summary() if self.job else f"{len(self.outputs)} statement(s) done"


class Session:
    """A streamsql session. Create one with :func:`streamsql.connect`.

    >>> import streamsql
    >>> s = streamsql.connect()
    >>> _ = s.execute("CREATE TABLE t (x INT) WITH ('connector' = 'datagen', "
    ...               "'number-of-rows' = '3', 'fields.x.kind' = 'sequence', "
    ...               "'fields.x.start' = '1', 'fields.x.end' = '3')")
    >>> s.query("SELECT x * 10 AS y FROM t").column("y").to_pylist()
    [10, 20, 30]
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        settings: dict[str, str] | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else None
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        path = str(self.state_dir / "state.duckdb") if self.state_dir else None
        self.con = duck.connect(path)
        self.catalog = Catalog()
        self.settings = Settings.defaults()
        if settings:
            self.settings.update(settings)
        self.stdout = stdout
        self._jobs = itertools.count(1)
        self.last_result: JobResult | None = None
        #: Processing time for PROCTIME() and NOW() in epoch milliseconds (None: the wall
        #: clock); tests set a fake one.
        self.clock: Callable[[], int] | None = None
        self._background: dict[str, tuple[Driver, threading.Thread, MaterializedTable]] = {}
        #: Called with each job ``run_planned`` starts, before it runs (e.g. a metrics
        #: server that watches it).
        self.on_job_start: list[Callable[[Job], None]] = []
        #: Which checkpoint jobs restore (``restore.checkpoint`` None: each its latest).
        self.restore = checkpoints.RestoreRequest()
        self._store: CheckpointStore | None = None
        #: The executor of the job ``run_planned`` runs now (signal handlers ask it for
        #: savepoints).
        self.current_driver: Driver | None = None

    @property
    def checkpoint_store(self) -> CheckpointStore | None:
        """The checkpoints of the state directory (None without one)."""
        if self._store is None and self.state_dir is not None:
            self._store = CheckpointStore(self.state_dir)
        return self._store

    # -- scripts ---------------------------------------------------------------------------

    def execute(
        self,
        script: str,
        *,
        on_output: Callable[[Output], None] | None = None,
        select: Callable[[ast.Query], Output] | None = None,
        run: Callable[[Planned], JobResult] | None = None,
    ) -> ExecuteResult:
        """Run a script: DDL and SET take effect in order, SELECT/SHOW/DESCRIBE/EXPLAIN
        outputs are collected, and all INSERT INTO statements run together as one job at
        the end (bounded sources run to completion).

        ``on_output`` sees each statement's output as it is produced; ``select`` and
        ``run`` replace how a SELECT and the INSERT job are run (the CLI prints rows as they
        come and stops on Ctrl-C).
        """
        result = ExecuteResult()
        bound: list[PlanNode] = []
        with _pointing_at(script):
            for stmt in parse_script(script):
                if isinstance(stmt, ast.Insert | ast.StatementSet):
                    binder = Binder(self.catalog, self.settings)
                    bound += [binder.insert(i) for i in ast.inserts_of(stmt)]
                    continue
                if isinstance(stmt, ast.Query) and select is not None:
                    output = select(stmt)
                else:
                    output = self.run_statement(stmt, script)
                result.outputs.append(output)
                if on_output is not None:
                    on_output(output)
            if bound:
                result.job = (run or self.run_planned)(self.plan(tuple(bound)))
        return result

    def run_statement(self, stmt: ast.Statement, script: str = "") -> Output:
        """Run one non-INSERT statement; a SELECT must read bounded sources here."""
        match stmt:
            case ast.CreateTable():
                self.catalog.create_table(stmt)
                return Output(stmt, message=f"table {stmt.name} created")
            case ast.CreateView(materialized=True):
                return Output(stmt, message=self._materialize(stmt))
            case ast.CreateView():
                self.catalog.create_view(stmt, script)
                return Output(stmt, message=f"view {stmt.name} created")
            case ast.Drop():
                self.catalog.drop(stmt)
                if stmt.kind == "MATERIALIZED VIEW":
                    self._stop_view(stmt.name)
                return Output(stmt, message=f"{stmt.kind.lower()} {stmt.name} dropped")
            case ast.Set(key=None):
                return Output(stmt, table=self.settings_table())
            case ast.Set():
                self.settings.set(stmt.key, stmt.value or "")
                return Output(stmt, message=f"set '{stmt.key}' = '{stmt.value}'")
            case ast.Reset():
                self.settings.reset(stmt.key)
                return Output(stmt, message="settings reset")
            case ast.Show():
                return Output(stmt, table=self.show(stmt.what))
            case ast.Describe():
                return Output(stmt, table=self.describe(stmt.name))
            case ast.Explain():
                return Output(stmt, message=self._explain(stmt))
            case ast.Query():
                return Output(stmt, table=self._query(stmt))
            case ast.Insert() | ast.StatementSet():
                job = self.run_planned(self.plan_statement(stmt))
                return Output(stmt, message=job.summary())
        raise PlanError(f"cannot run {type(stmt).__name__} statements", span=stmt.span)

    # -- queries ---------------------------------------------------------------------------

    def query(self, sql: str) -> pa.Table:
        """Run a SELECT over bounded sources (or SHOW, DESCRIBE, SET) and return its whole
        result as a table.
        """
        with _pointing_at(sql):
            stmt = parse_statement(sql)
            if isinstance(stmt, ast.Query):
                return self._query(stmt)
            if isinstance(stmt, ast.Show | ast.Describe) or (
                isinstance(stmt, ast.Set) and stmt.key is None
            ):
                table = self.run_statement(stmt, sql).table
                assert table is not None
                return table
            raise PlanError(
                "query() takes a SELECT, SHOW or DESCRIBE; use execute() for other statements",
                span=stmt.span,
            )

    def sql(self, sql: str) -> QueryHandle:
        """A handle on a SELECT: ``.stream()`` yields batches as the query emits them."""
        with _pointing_at(sql):
            stmt = parse_statement(sql)
            if not isinstance(stmt, ast.Query):
                raise PlanError("sql() takes a SELECT", span=stmt.span)
            return QueryHandle(self, self.plan_statement(stmt), sql)

    def explain(
        self, sql: str, *, verbose: bool = False, analyze: bool = False, format: str = "text"
    ) -> str:
        """EXPLAIN a SELECT, an INSERT or a statement set (``sql`` may itself be an
        EXPLAIN statement). With ``analyze`` (or ``EXPLAIN ANALYZE``) the statement runs to
        its end first, an INSERT writing its rows, and the physical plan shows what each
        operator and instance did: rows, rates, utilization, backpressure, watermarks,
        state (see :mod:`streamsql.runtime.metrics`). ``format`` ``dot`` or ``mermaid``
        gives the job graph as a Graphviz or Mermaid diagram instead.
        """
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        with _pointing_at(sql):
            stmt = parse_statement(sql)
            if isinstance(stmt, ast.Explain):
                return self._explain(stmt, format)
            target = stmt
            if not isinstance(target, ast.Query | ast.Insert | ast.StatementSet):
                raise PlanError(
                    "explain() takes a SELECT, an INSERT or a statement set", span=stmt.span
                )
            return self._explain(ast.Explain(target, verbose=verbose, analyze=analyze), format)

    def _query(self, stmt: ast.Query) -> pa.Table:
        planned = self.plan_statement(stmt)
        if not planned.bounded:
            raise PlanError(
                "this query reads an unbounded source and would never finish",
                span=stmt.span,
                hint="bound the source (e.g. 'number-of-rows' for datagen) or consume it "
                "incrementally with session.sql(query).stream()",
            )
        root = planned.roots[0]
        results = ResultBuffer(batch_schema(root))
        self.run_planned(planned, results)
        changes = pa.Table.from_batches(results.drain(), schema=results.schema)
        return final_table(changes) if root.mode.updating else changes

    # -- planning and running ----------------------------------------------------------------

    def plan(self, roots: tuple[PlanNode, ...]) -> Planned:
        settings = self.settings
        ctx = OptimizerContext(
            settings.parallelism, settings.disabled_rules, settings.agg_phase_strategy
        )
        optimized = optimize(attach_late_sink(roots, self.catalog, self.settings), ctx)
        return Planned(roots, optimized, build_job_graph(optimized.roots))

    def plan_statement(self, stmt: ast.Query | ast.Insert | ast.StatementSet) -> Planned:
        """Bind and plan a SELECT, or an INSERT or statement set as one job."""
        binder = Binder(self.catalog, self.settings)
        if isinstance(stmt, ast.Query):
            return self.plan((binder.query(stmt),))
        return self.plan(tuple(binder.insert(i) for i in ast.inserts_of(stmt)))

    def run_planned(
        self,
        planned: Planned,
        results: ResultBuffer | None = None,
        on_batch: Callable[[pa.RecordBatch], None] | None = None,
    ) -> JobResult:
        """Run a planned job to its end (or until interrupted: the job then stops cleanly
        and ``last_result`` holds its counters). ``on_batch`` receives result batches as
        they arrive instead of leaving them in ``results``.
        """
        driver = self.driver(planned, results)
        self.current_driver = driver
        for watch in self.on_job_start:
            watch(driver.job)
        steps = driver.steps()

        def hand_over() -> None:
            if on_batch is not None and results is not None:
                for batch in results.drain():
                    on_batch(batch)

        try:
            for _ in steps:
                hand_over()
            hand_over()
        finally:
            steps.close()
            driver.job.state.drop_all()
            self.last_result = driver.job.result()
        return self.last_result

    def driver(self, planned: Planned, results: ResultBuffer | None = None) -> Driver:
        n = next(self._jobs)
        # Every job has a connection of its own, so that jobs may run on other threads. Its
        # working state is in memory also with a state directory: checkpoints make it
        # durable, not writes to a file on every batch.
        con = duck.cursor(self.con) if self.state_dir is None else duck.connect()
        state = StateStore(con, prefix=f"j{n}_")
        name = f"{self.settings['pipeline.name']}-{n}"
        job = Job(
            planned.graph,
            self.settings,
            state,
            name=name,
            stdout=self.stdout,
            results=results,
            clock=self.clock,
        )
        checkpoints.attach(job, planned.roots, self.settings, self.checkpoint_store, self.restore)
        from streamsql.runtime.executor import create_executor

        # 'execution.runtime': the threaded executor, or the deterministic driver.
        return create_executor(job)  # type: ignore[return-value]

    # -- introspection -----------------------------------------------------------------------

    def _explain(self, stmt: ast.Explain, format: str = "text") -> str:
        planned = self.plan_statement(stmt.target)
        if format != "text":
            if stmt.analyze:
                raise PlanError("EXPLAIN ANALYZE shows its figures as text only", span=stmt.span)
            return render_graph((planned.graph,), format)
        parts = ["== Optimized Logical Plan ==", explain_logical(planned.roots)]
        idle = self.settings["table.exec.source.idle-timeout"]
        taken = checkpoints.checkpointing(self.settings, self.state_dir is not None)
        if stmt.analyze:
            result = self._analyze(planned, stmt)
            physical = explain_analyzed(
                planned.graph, result, idle_timeout_ms=idle, checkpoints=taken
            )
            parts += ["", "== Physical Plan, Analyzed ==", physical]
        else:
            parts += [
                "",
                "== Physical Plan ==",
                explain_physical(planned.graph, idle_timeout_ms=idle, checkpoints=taken),
            ]
        parts += ["", "== Dataflow ==", dataflow_text(planned.graph)]
        if stmt.verbose:
            parts += ["", "== Bound Plan ==", explain_logical(planned.bound)]
            for rule, after in planned.optimized.trace:
                parts += ["", f"== After {rule} ==", explain_logical(after, physical=True)]
        return "\n".join(parts)

    def _analyze(self, planned: Planned, stmt: ast.Explain) -> JobResult:
        """Run an EXPLAIN ANALYZE's job to its end; a query's rows are counted, not kept."""
        if not planned.bounded:
            names = sorted({s.table.name for s in _scans(planned.roots) if not s.bounded})
            raise PlanError(
                "EXPLAIN ANALYZE runs the statement to its end, but it reads unbounded "
                f"input{': ' + ', '.join(names) if names else ''}",
                span=stmt.span,
                hint="bound the source (e.g. 'number-of-rows' for datagen), or watch a "
                "running job's figures with `streamsql run --metrics-port N`",
            )
        results = None
        if isinstance(stmt.target, ast.Query):
            results = ResultBuffer(batch_schema(planned.roots[0]))
        return self.run_planned(planned, results, on_batch=lambda batch: None)

    def show(self, what: str = "TABLES") -> pa.Table:
        if what == "VIEWS":
            names = sorted(self.catalog.views)
        else:
            names = sorted(self.catalog.tables) + (
                sorted(self.catalog.views) if what == "TABLES" else []
            )
        return pa.table({"name": pa.array(names, pa.string())})

    def describe(self, name: str) -> pa.Table:
        found = self.catalog.lookup(name)
        if hasattr(found, "describe"):
            rows = found.describe()
        else:
            scope = Binder(self.catalog, self.settings).bind_query(found.query.tree)
            rows = [
                (c.name, sql_type_name(f.type), True, "")
                for c, f in zip(scope.columns, scope.node.schema, strict=True)
            ]
        return pa.table(
            {
                "name": [r[0] for r in rows],
                "type": [r[1] for r in rows],
                "null": [r[2] for r in rows],
                "extras": [r[3] for r in rows],
            }
        )

    def settings_table(self) -> pa.Table:
        items = sorted(self.settings.values.items())
        return pa.table({"key": [k for k, _ in items], "value": [str(v) for _, v in items]})

    # -- materialized views -------------------------------------------------------------------

    def _materialize(self, stmt: ast.CreateView) -> str:
        """Create a materialized view: a state table kept up to date by a job. Over
        bounded input the job runs to its end now; otherwise it runs in the background
        until the view is dropped or the session closes.
        """
        name = stmt.name.split(".")[-1]
        if self.catalog.resolve(name) == name:
            if stmt.if_not_exists:
                return f"materialized view {name} exists"
            raise BindError(f"table or view '{name}' already exists", span=stmt.span)
        scope = Binder(self.catalog, self.settings).bind_query(stmt.query.tree)
        node = scope.node
        check_bounded(node)
        if stmt.columns:
            if len(stmt.columns) != len(node.schema):
                raise BindError(
                    f"materialized view '{name}' names {len(stmt.columns)} columns but its "
                    f"query produces {len(node.schema)}",
                    span=stmt.span,
                )
            node = Project(
                node,
                tuple(
                    (c, exp.column(src, quoted=True))
                    for c, src in zip(stmt.columns, node.schema.names, strict=True)
                ),
            )
        target = MaterializedTable(self.con, f"mv_{name}", node.schema, node.mode)
        target.create()
        table = CatalogTable(
            name=name,
            columns=tuple(TableColumn(f.name, f.type) for f in node.schema),
            options={"connector": "materialized-view"},
            connector=MaterializedViewConnector(self.con, target),
            kind="materialized view",
        )
        self.catalog.add_materialized_view(table)
        planned = self.plan((Sink(node, table),))
        if planned.bounded:
            job = self.run_planned(planned)
            return f"materialized view {name} created ({job.rows_written:,} changes applied)"
        driver = self.driver(planned)
        thread = threading.Thread(
            target=_drain, args=(driver,), name=f"streamsql-mv-{name}", daemon=True
        )
        self._background[name] = (driver, thread, target)
        thread.start()
        return f"materialized view {name} created; a job keeps it up to date"

    def _stop_view(self, name: str) -> None:
        entry = self._background.pop(name, None)
        if entry is not None:
            driver, thread, _ = entry
            driver.stop()
            thread.join()
        duck.run(self.con, f"DROP TABLE IF EXISTS {duck.quote('mv_' + name)}")

    def close(self) -> None:
        """Stop background jobs (materialized views) and close the state database."""
        for name in list(self._background):
            driver, thread, _ = self._background.pop(name)
            driver.stop()
            thread.join()
        if self._store is not None:
            self._store.close()
        self.con.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QueryHandle:
    """A SELECT planned in a session; run it with ``stream()`` or ``to_arrow()``."""

    def __init__(self, session: Session, planned: Planned, sql: str) -> None:
        self.session = session
        self.planned = planned
        self.text = sql
        self.result: JobResult | None = None

    @property
    def schema(self) -> pa.Schema:
        """The schema of the batches ``stream()`` yields (with ``_op`` when updating)."""
        return batch_schema(self.planned.roots[0])

    @property
    def updating(self) -> bool:
        return self.planned.roots[0].mode.updating

    def explain(self) -> str:
        return "\n\n".join(
            (
                explain_logical(self.planned.roots),
                explain_physical(self.planned.graph),
                "== Dataflow ==\n" + dataflow_text(self.planned.graph),
            )
        )

    def stream(self) -> Iterator[pa.RecordBatch]:
        """Yield result batches as the query emits them; an unbounded query runs until the
        caller stops iterating (the job then stops cleanly).
        """
        results = ResultBuffer(self.schema)
        driver = self.session.driver(self.planned, results)
        steps = driver.steps()
        try:
            with _pointing_at(self.text):
                for _ in steps:
                    yield from results.drain()
                yield from results.drain()
        finally:
            steps.close()
            self.result = driver.job.result()
            driver.job.state.drop_all()

    def to_arrow(self) -> pa.Table:
        """The whole result of a bounded query (the final rows of an updating one)."""
        if not self.planned.bounded:
            raise PlanError("this query is unbounded; iterate over .stream() instead")
        changes = pa.Table.from_batches(list(self.stream()), schema=self.schema)
        return final_table(changes) if self.updating else changes


def _drain(driver: Driver) -> None:
    """Run a background job until it ends or is stopped; its state goes with it."""
    try:
        for _ in driver.steps():
            pass
    finally:
        driver.job.state.drop_all()


def _scans(roots: tuple[PlanNode, ...]) -> Iterator[Scan]:
    """Every Scan under ``roots``."""
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, Scan):
            yield node
        stack.extend(node.inputs)


def batch_schema(node: PlanNode) -> pa.Schema:
    """The schema of a node's batches: its rows, plus ``_op`` when it carries changes."""
    schema = node.schema
    return schema.append(pa.field(OP, OP_TYPE)) if node.mode.updating else schema


def connect(state_dir: str | Path | None = None, settings: dict[str, str] | None = None) -> Session:
    """A new session; ``state_dir`` holds its DuckDB state (in memory when None) and
    ``settings`` are applied as if by ``SET 'key' = 'value'``.
    """
    return Session(state_dir, settings=settings)


@contextlib.contextmanager
def _pointing_at(script: str) -> Iterator[None]:
    """Attach the script to errors raised inside, so that they can show a caret."""
    try:
        yield
    except StreamSQLError as e:
        e.with_source(script)
        raise
