"""``streamsql``: run and explain SQL scripts from the command line."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console

from streamsql import __version__
from streamsql.changelog import final_table
from streamsql.errors import StreamSQLError
from streamsql.output import figure_table, print_figures, print_table, row_lines
from streamsql.parser import ast, parse_script
from streamsql.plan.binder import Binder
from streamsql.runtime.job import JobResult
from streamsql.runtime.metrics import instance_figures, operator_figures
from streamsql.runtime.operators import ResultBuffer
from streamsql.runtime.prometheus import MetricsServer
from streamsql.session import Output, Planned, Session, batch_schema

err = Console(stderr=True, highlight=False, soft_wrap=True)


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


@click.group(invoke_without_command=True)
@click.version_option(__version__, prog_name="streamsql")
@click.pass_context
def main(ctx: click.Context) -> None:
    """streamsql: streaming SQL (Flink's dialect) over Arrow micro-batches."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--parallelism", type=click.IntRange(1, 1024), help="parallel instances")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a setting, as SET does")
@click.option("--state-dir", type=click.Path(file_okay=False), help="where state is kept")
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
def run(
    file: str,
    parallelism: int | None,
    sets: tuple[str, ...],
    state_dir: str | None,
    quiet: bool,
    stats: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run the SQL script FILE.

    DDL and SET take effect in order; SELECT results are printed; the script's INSERT INTO
    statements run together as one job. Bounded jobs run to completion; unbounded ones run
    until Ctrl-C, which stops them cleanly. At the end comes a summary and a table of
    figures per operator: rows in/out, rows/s, utilization, backpressure, headroom,
    watermark and its lag, state rows.
    """
    _terminate_as_interrupt()
    script = _read(file)
    out = _stdout()
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
        if server is not None:
            session.on_job_start.append(server.watch)
        result = session.execute(
            script,
            on_output=show,
            select=lambda stmt: _select(session, stmt, out, summarize),
            run=lambda planned: _run(session, planned),
        )
        summarize(result.job)
    except StreamSQLError as e:
        _fail(e.with_source(script))
    except Exception as e:
        _fail(e)
    finally:
        if server is not None:
            server.close()


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


def _run(session: Session, planned: Planned, results=None, on_batch=None) -> JobResult:
    """Run a job; Ctrl-C (or SIGTERM) stops it cleanly and returns what it did."""
    try:
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
    planned = session.plan((Binder(session.catalog, session.settings).query(stmt),))
    schema = batch_schema(planned.roots[0])
    results = ResultBuffer(schema)
    if planned.bounded:  # the final result; an updating query's changes are applied
        collected: list[pa.RecordBatch] = []
        job = _run(session, planned, results, collected.append)
        print_table(out, final_table(pa.Table.from_batches(collected, schema=schema)))
    else:

        def rows(batch: pa.RecordBatch) -> None:
            for line in row_lines(batch):
                out.print(line, markup=False, highlight=False)

        job = _run(session, planned, results, rows)
    summarize(job)
    return Output(stmt, message=job.summary())


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-p", "--parallelism", type=click.IntRange(1, 1024))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
@click.option("-v", "--verbose", is_flag=True, help="also show the plan after each rule")
def explain(file: str, parallelism: int | None, sets: tuple[str, ...], verbose: bool) -> None:
    """Print the optimized logical plan and the physical plan of the script FILE."""
    script = _read(file)
    try:
        session = _session(parallelism, sets, None)
        inserts: list[ast.Insert] = []
        queries: list[ast.Query] = []
        for stmt in parse_script(script):
            if isinstance(stmt, ast.Insert | ast.StatementSet):
                inserts.extend(ast.inserts_of(stmt))
            elif isinstance(stmt, ast.Query):
                queries.append(stmt)
            elif isinstance(stmt, ast.Explain):
                click.echo(session.run_statement(stmt, script).message)
            else:
                session.run_statement(stmt, script)
        targets: list[ast.Query | ast.StatementSet] = list(queries)
        if inserts:
            targets.append(ast.StatementSet(tuple(inserts)))
        for target in targets:
            click.echo(session.run_statement(ast.Explain(target, verbose=verbose), script).message)
    except StreamSQLError as e:
        _fail(e.with_source(script))
    except Exception as e:
        _fail(e)


if __name__ == "__main__":
    main()
