"""``streamsql``: run and explain SQL scripts from the command line."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console

from streamsql import __version__
from streamsql.changelog import final_table
from streamsql.checkpoint.store import LOG_NAME
from streamsql.checkpoint.store import opened as opened_store
from streamsql.errors import StreamSQLError
from streamsql.output import figure_table, print_figures, print_rows, print_table
from streamsql.parser import ast, parse_script
from streamsql.physical.render import FORMATS
from streamsql.progress import JobProgress, progress_display
from streamsql.runtime.job import JobResult
from streamsql.runtime.metrics import instance_figures, operator_figures
from streamsql.runtime.operators import ResultBuffer
from streamsql.runtime.prometheus import MetricsServer
from streamsql.session import Output, Planned, Session, batch_schema

err = Console(stderr=True, highlight=False, soft_wrap=True)

#: In a state directory while ``streamsql run`` runs there: its process id.
PID_FILE = "job.pid"


def _session(parallelism: int | None, sets: tuple[str, ...], state_dir: str | None) -> Session:
    settings = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        settings[key.strip()] = value.strip()
    if parallelism is not None:
        settings["parallelism.default"] = str(parallelism)
    return Session(state_dir, settings=settings)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise click.ClickException(f"cannot read {path}: {e.strerror}") from None


def _fail(e: BaseException) -> None:
    if isinstance(e, StreamSQLError):
        err.print(str(e), markup=False)
        sys.exit(1)
    if os.environ.get("STREAMSQL_DEBUG"):
        raise e
    err.print(f"internal error: {type(e).__name__}: {e}", markup=False)
    err.print("(set STREAMSQL_DEBUG=1 to see the traceback)", markup=False)
    sys.exit(2)


def _terminate_as_interrupt() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _savepoint_signals(session: Session) -> None:
    """With a state directory: Ctrl-C or SIGTERM stops the job with a savepoint (a second
    one stops it at once), SIGUSR1 takes a savepoint and goes on, SIGUSR2 stops with one
    (``streamsql savepoint`` sends these).
    """
    asked = []

    def checkpointed():
        driver = session.current_driver
        return driver if driver is not None and driver.job.coordinator is not None else None

    def stop(signum: int, frame: object) -> None:
        driver = checkpointed()
        if driver is None or asked:
            raise KeyboardInterrupt
        asked.append(signum)
        err.print("stopping with a savepoint (interrupt again to stop without one)", markup=False)
        driver.savepoint(stop=True)

    def keep(signum: int, frame: object) -> None:
        driver = checkpointed()
        if driver is not None:
            driver.savepoint(stop=signum == signal.SIGUSR2)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, keep)
    signal.signal(signal.SIGUSR2, keep)


@click.group(invoke_without_command=True)
@click.version_option(__version__, prog_name="streamsql")
@click.pass_context
def main(ctx: click.Context) -> None:
    """streamsql: streaming SQL (Flink's dialect) over Arrow micro-batches.

    With no command, the interactive shell opens (see 'streamsql shell --help').
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(shell)


@main.command()
@click.option("-p", "--parallelism", type=click.IntRange(1, 1024), help="parallel instances")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a setting, as SET does")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="where INSERT jobs keep state and checkpoints",
)
def shell(parallelism: int | None, sets: tuple[str, ...], state_dir: str | None) -> None:
    """The interactive shell: statements end with ';', .help lists its commands, Ctrl-C
    stops a running query, Ctrl-D leaves. With standard input not a terminal, the
    statements read from it run as a script (exit status 1 if any failed).
    """
    from streamsql.shell import Shell

    try:
        session = _session(parallelism, sets, state_dir)
    except StreamSQLError as e:
        _fail(e)
    console = _stdout()
    repl = Shell(session, console)
    if sys.stdin.isatty() and console.is_terminal:
        code = repl.interact()
    else:
        code = repl.run_script(sys.stdin.read())
    session.close()
    sys.exit(code)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--parallelism", type=click.IntRange(1, 1024), help="parallel instances")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a setting, as SET does")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="where state and checkpoints are kept: INSERT jobs take checkpoints there and a "
    "restarted job goes on from its latest one",
)
@click.option(
    "--from-checkpoint",
    type=int,
    metavar="ID",
    help="restore this checkpoint or savepoint of the state directory (default: the latest)",
)
@click.option(
    "--allow-query-change",
    is_flag=True,
    help="restore a checkpoint of a changed query: operators that did not change get their "
    "state back, the others start empty",
)
@click.option("-q", "--quiet", is_flag=True, help="no summary and metrics at the end")
@click.option(
    "--stats",
    is_flag=True,
    help="at the end, figures per operator instance (not per operator), raw counters and "
    "watermarks",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="serve metrics in the Prometheus text format at http://HOST:PORT/metrics while "
    "the job runs (0: any free port)",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="address to serve metrics on"
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="show the INSERT job's progress while it runs (default: on a terminal, unless "
    "--quiet); with stderr not a terminal, a plain line every second",
)
def run(
    file: str,
    parallelism: int | None,
    sets: tuple[str, ...],
    state_dir: str | None,
    from_checkpoint: int | None,
    allow_query_change: bool,
    quiet: bool,
    stats: bool,
    metrics_port: int | None,
    metrics_host: str,
    progress: bool | None,
) -> None:
    """Run the SQL script FILE.

    DDL and SET take effect in order; SELECT results are printed; the script's INSERT INTO
    statements run together as one job. Bounded jobs run to completion; unbounded ones run
    until Ctrl-C, which stops them cleanly. At the end comes a summary and a table of
    figures per operator: rows in/out, rows/s, utilization, backpressure, headroom,
    watermark and its lag, state rows. While the INSERT job runs, a terminal shows its
    progress: rows read and their rate, rows written, the watermark, late rows.
    """
    _terminate_as_interrupt()
    script = _read(file)
    out = _stdout()
    display = progress_display(err, progress, quiet)
    server = _metrics_server(metrics_host, metrics_port) if metrics_port is not None else None

    def show(output: Output) -> None:
        if output.table is not None:
            print_table(out, output.table)
        elif output.message and isinstance(output.statement, ast.Explain):
            out.print(output.message, markup=False)

    def summarize(result: JobResult | None) -> None:
        if result is None or quiet:
            return
        err.print(result.summary(), markup=False)
        _print_metrics(result, per_instance=stats)
        if stats:
            print_table(err, pa.Table.from_pylist(result.by_operator()))
            for line in result.watermark_lines():
                err.print(line, markup=False)

    try:
        session = _session(parallelism, sets, state_dir)
        session.restore.checkpoint = from_checkpoint
        session.restore.allow_changed_query = allow_query_change
        if state_dir is not None:
            if from_checkpoint is not None and session.checkpoint_store is not None:
                session.checkpoint_store.read(from_checkpoint)  # refuse a bad id up front
            _savepoint_signals(session)
            pid_file = Path(state_dir) / PID_FILE
            pid_file.write_text(str(os.getpid()))
        if server is not None:
            session.on_job_start.append(server.watch)
        result = session.execute(
            script,
            on_output=show,
            select=lambda stmt: _select(session, stmt, out, summarize),
            run=lambda planned: _run(session, planned, progress=display),
        )
        summarize(result.job)
    except StreamSQLError as e:
        _fail(e.with_source(script))
    except Exception as e:
        _fail(e)
    finally:
        if server is not None:
            server.close()
        if state_dir is not None:
            (Path(state_dir) / PID_FILE).unlink(missing_ok=True)


def _metrics_server(host: str, port: int) -> MetricsServer:
    try:
        server = MetricsServer(port, host).start()
    except OSError as e:
        raise click.ClickException(f"cannot serve metrics on {host}:{port}: {e.strerror}") from None
    err.print(f"metrics: {server.url}", markup=False)
    return server


def _print_metrics(result: JobResult, *, per_instance: bool) -> None:
    """Figures per operator (and per instance) on stderr: a rich table on a terminal,
    aligned text otherwise.
    """
    figures = instance_figures(result) if per_instance else operator_figures(result)
    labels = [
        [str(f.task), f.operator, f"#{f.instance}" if per_instance else str(f.instances)]
        for f in figures
    ]
    headings, rows = figure_table(
        labels, figures, ["task", "operator", "#" if per_instance else "p"]
    )
    print_figures(err, headings, rows, labels=3, plain=not err.is_terminal)


def _stdout() -> Console:
    """Standard output: rich tables fit a terminal; piped output keeps whole lines."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=100_000)


def _run(
    session: Session,
    planned: Planned,
    results=None,
    on_batch=None,
    progress: JobProgress | None = None,
) -> JobResult:
    """Run a job; Ctrl-C (or SIGTERM) stops it cleanly and returns what it did.
    ``progress`` shows the job's status while it runs, gone before anything else prints.
    """
    try:
        if progress is None:
            return session.run_planned(planned, results, on_batch)
        with progress.watching(session):
            return session.run_planned(planned, results, on_batch)
    except KeyboardInterrupt:
        err.print("stopped by interrupt", markup=False)
        result = session.last_result
        assert result is not None
        if result.rows_written == 0:
            for line in _no_output_hints(result):
                err.print(line, markup=False)
        return result


def _no_output_hints(result: JobResult) -> list[str]:
    """Why a stopped job wrote nothing: usually a watermark that never moved."""
    lines = ["no rows were written; watermarks when stopped:"]
    lines += ["  " + line for line in result.watermark_lines()]
    held = result.held_back_by()
    if held:
        lines.append(
            "windows close only when the watermark passes their end; held back by: "
            + ", ".join(held)
        )
        lines.append(
            "hint: an input without new rows holds every window open; set "
            "'table.exec.source.idle-timeout' (e.g. SET 'table.exec.source.idle-timeout' = "
            "'5 s') or check that its rows carry later times"
        )
    return lines


def _select(session: Session, stmt: ast.Query, out: Console, summarize) -> Output:
    """Print a SELECT's result: a table for a bounded query, rows as they come otherwise."""
    planned = session.plan_statement(stmt)
    schema = batch_schema(planned.roots[0])
    results = ResultBuffer(schema)
    if planned.bounded:  # the final result; an updating query's changes are applied
        collected: list[pa.RecordBatch] = []
        job = _run(session, planned, results, collected.append)
        print_table(out, final_table(pa.Table.from_batches(collected, schema=schema)))
    else:
        job = _run(session, planned, results, lambda batch: print_rows(out, batch))
    summarize(job)
    return Output(stmt, message=job.summary())


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--parallelism", type=click.IntRange(1, 1024))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
@click.option("-v", "--verbose", is_flag=True, help="also show the plan after each rule")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="as 'run' would be given it: the delivery guarantees then count with checkpoints",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: the plans; dot (Graphviz) or mermaid: the job graph as one diagram, with a "
    "cluster per job when the script has several (its INSERTs together, each SELECT)",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="write to this file, not stdout"
)
def explain(
    file: str,
    parallelism: int | None,
    sets: tuple[str, ...],
    verbose: bool,
    state_dir: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Print the optimized logical plan, the physical plan and the dataflow of the script
    FILE; with --format dot or mermaid, its job graph as a diagram.
    """
    from streamsql.physical.graph import JobGraph
    from streamsql.physical.render import render

    script = _read(file)
    texts: list[str] = []
    show = click.echo if output is None else texts.append
    graphs: list[JobGraph] = []

    def explained(target: ast.Query | ast.StatementSet, stmt: ast.Explain | None) -> None:
        if fmt != "text":
            graphs.append(session.plan_statement(target).graph)
        else:
            stmt = stmt or ast.Explain(target, verbose=verbose)
            show(session.run_statement(stmt, script).message)

    try:
        session = _session(parallelism, sets, state_dir)
        inserts: list[ast.Insert] = []
        queries: list[ast.Query] = []
        for stmt in parse_script(script):
            if isinstance(stmt, ast.Insert | ast.StatementSet):
                inserts.extend(ast.inserts_of(stmt))
            elif isinstance(stmt, ast.Query):
                queries.append(stmt)
            elif isinstance(stmt, ast.Explain):
                explained(stmt.target, stmt)
            else:
                session.run_statement(stmt, script)
        targets: list[ast.Query | ast.StatementSet] = list(queries)
        if inserts:
            targets.append(ast.StatementSet(tuple(inserts)))
        for target in targets:
            explained(target, None)
        if fmt != "text":
            show(render(graphs, fmt).rstrip("\n"))
    except StreamSQLError as e:
        _fail(e.with_source(script))
    except Exception as e:
        _fail(e)
    if output is not None:
        try:
            Path(output).write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        except OSError as e:
            raise click.ClickException(f"cannot write {output}: {e.strerror}") from None


@main.command()
@click.argument("state_dir", type=click.Path(file_okay=False, exists=True))
def checkpoints(state_dir: str) -> None:
    """List the checkpoints and savepoints kept in STATE_DIR."""
    try:
        with opened_store(state_dir) as store:
            found = store.list()
    except StreamSQLError as e:
        _fail(e)
    rows = [
        {
            "id": c.id,
            "kind": c.kind,
            "job": c.job,
            "completed": c.completed_at.strftime("%Y-%m-%d %H:%M:%S"),
            "ms": round(c.duration_ms, 1),
            "state bytes": c.state_bytes,
            "state rows": c.state_rows,
            "mode": c.mode,
        }
        for c in found
    ]
    if not rows:
        click.echo(f"no checkpoints in {state_dir}")
        return
    print_table(_stdout(), pa.Table.from_pylist(rows))


@main.command()
@click.argument("state_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--stop", is_flag=True, help="stop the job once the savepoint is taken")
@click.option("--timeout", default=60.0, show_default=True, help="seconds to wait for it")
def savepoint(state_dir: str, stop: bool, timeout: float) -> None:
    """Take a savepoint of the job running with --state-dir STATE_DIR (and with --stop,
    stop it): resume later with ``streamsql run FILE --state-dir STATE_DIR
    --from-checkpoint ID``.
    """
    pid_file = Path(state_dir) / PID_FILE
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        raise click.ClickException(f"no job is running with --state-dir {state_dir}") from None
    log = Path(state_dir) / LOG_NAME
    before = _logged(log)
    try:
        os.kill(pid, signal.SIGUSR2 if stop else signal.SIGUSR1)
    except ProcessLookupError:
        raise click.ClickException(f"the job (process {pid}) is no longer running") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        new = [line.split()[0] for line in _logged(log)[len(before) :] if " savepoint " in line]
        if new:
            click.echo(f"savepoint {new[-1]} taken" + (", job stopping" if stop else ""))
            return
    raise click.ClickException(f"no savepoint within {timeout:.0f} s")


def _logged(log: Path) -> list[str]:
    try:
        return log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


if __name__ == "__main__":
    main()
