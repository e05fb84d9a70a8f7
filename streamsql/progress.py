"""A running job's progress for people: what it has done so far, refreshed while it runs.

``streamsql run`` shows it for the script's INSERT job (a SELECT's rows print on stdout,
which a status line would cut into). The figures are the job's live counters, read the
way the Prometheus endpoint reads them (:func:`~streamsql.runtime.prometheus.snapshot`) by
a thread of its own a few times a second, so the job does no extra work per batch.

On a terminal the status is a transient rich ``Live`` of two lines, gone when the job
ends; elsewhere (``--progress`` with stderr piped) it is a plain line every second::

    progress: 12.3 s, 1,234,567 rows read (98,765/s), 1,200 written, watermark
    2024-01-01 00:00:05.000, 0 late

(one line, broken here to fit). The rate is over the last two seconds, so that it follows
a job that speeds up or stalls instead of averaging its whole run. The watermark is the
lowest of the sinks' that have one: how far in event time the output is complete.

A job whose print sink writes to the terminal gets no live status: its rows scroll there
and show the progress (with ``--progress``, plain lines go between them instead).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from streamsql.connectors.fs_source import list_files
from streamsql.errors import StreamSQLError
from streamsql.plan.nodes import Sink
from streamsql.runtime.job import Job, JobResult
from streamsql.runtime.prometheus import snapshot
from streamsql.runtime.timeutil import MAX_WATERMARK, MIN_WATERMARK, format_ms

if TYPE_CHECKING:
    from streamsql.catalog import CatalogTable
    from streamsql.session import Session

#: Seconds between refreshes: on a terminal, and of the plain lines.
LIVE_INTERVAL_S = 0.25
PLAIN_INTERVAL_S = 1.0
#: The recent rate is over this many seconds of samples.
RATE_WINDOW_S = 2.0


@dataclass(frozen=True)
class Sample:
    """What a job has done at one moment: the figures its status shows."""

    elapsed_s: float
    rows_read: int
    rows_written: int
    late_rows: int
    watermark: int | None  # the job's watermark (epoch ms); None: none yet
    checkpoints: int | None = None  # completed; None: the job takes none
    total_rows: int | None = None  # rows its sources hold, when known beforehand

    @property
    def share_read(self) -> float | None:
        """The share of ``total_rows`` read so far (None: no total known)."""
        if not self.total_rows:
            return None
        return min(self.rows_read / self.total_rows, 1.0)


def sample_of(result: JobResult, total_rows: int | None = None) -> Sample:
    """The status figures of a (running) job's result."""
    return Sample(
        elapsed_s=result.elapsed_s,
        rows_read=result.rows_read,
        rows_written=result.rows_written,
        late_rows=result.late_rows_dropped,
        watermark=job_watermark(result),
        checkpoints=result.checkpoints.completed if result.checkpoints is not None else None,
        total_rows=total_rows,
    )


def job_watermark(result: JobResult) -> int | None:
    """The lowest watermark among the job's sinks that have one (None: none has yet).

    A sink without one (its rows carry no event time) is left out rather than holding the
    job's watermark at "none" for the whole run.
    """
    marks = [
        m.watermark
        for m in result.operators
        if m.name == Sink.__name__ and m.watermark is not None and m.watermark > MIN_WATERMARK
    ]
    return min(marks) if marks else None


def recent_rate(samples: Sequence[Sample]) -> float:
    """Rows read per second from the first of ``samples`` to the last (the last one's
    average over its whole run when they span no time).

    >>> recent_rate([Sample(1.0, 100, 0, 0, None), Sample(3.0, 500, 0, 0, None)])
    200.0
    >>> recent_rate([Sample(2.0, 100, 0, 0, None)])
    50.0
    """
    first, last = samples[0], samples[-1]
    span = last.elapsed_s - first.elapsed_s
    if span > 0:
        return (last.rows_read - first.rows_read) / span
    return last.rows_read / last.elapsed_s if last.elapsed_s > 0 else 0.0


def watermark_text(ms: int | None) -> str:
    """A watermark to the millisecond; '-' before the first, '+inf' at the end of input.

    >>> watermark_text(1_704_067_205_000), watermark_text(None)
    ('2024-01-01 00:00:05.000', '-')
    """
    if ms is None or ms <= MIN_WATERMARK:
        return "-"
    if ms >= MAX_WATERMARK:
        return "+inf"
    date, _, rest = format_ms(ms).partition("T")
    clock, _, fraction = rest.partition(".")
    return f"{date} {clock}.{(fraction + '000')[:3]}"


def elapsed_text(seconds: float) -> str:
    """``12.3 s`` within the first minute, then ``m:ss`` or ``h:mm:ss``.

    >>> elapsed_text(12.34), elapsed_text(125), elapsed_text(3725)
    ('12.3 s', '2:05', '1:02:05')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _read_text(s: Sample, rate: float) -> str:
    share = s.share_read
    if share is None:
        return f"{s.rows_read:,} rows read ({rate:,.0f}/s)"
    return f"{s.rows_read:,} of {s.total_rows:,} rows read ({share:.0%}, {rate:,.0f}/s)"


def _checkpoints_text(n: int) -> str:
    return f"{n:,} checkpoint{'s' if n != 1 else ''}"


def plain_line(s: Sample, rate: float) -> str:
    """The status as one line of plain text (``rate``: recent rows read per second).

    >>> plain_line(Sample(12.34, 1_234_567, 1_200, 0, 1_704_067_205_000), 98_765.4)
    'progress: 12.3 s, 1,234,567 rows read (98,765/s), 1,200 written, watermark 2024-01-01 00:00:05.000, 0 late'
    """  # noqa: E501
    parts = [
        elapsed_text(s.elapsed_s),
        _read_text(s, rate),
        f"{s.rows_written:,} written",
        f"watermark {watermark_text(s.watermark)}",
        f"{s.late_rows:,} late",
    ]
    if s.checkpoints is not None:
        parts.append(_checkpoints_text(s.checkpoints))
    return "progress: " + ", ".join(parts)


def live_view(s: Sample, rate: float, spinner: Spinner | None = None) -> RenderableType:
    """The status for a terminal: how long the job runs (and, with a known total, a bar),
    then its figures on a line that is cut short rather than wrapped. Plain text but for
    the bar: a table takes a few times longer to draw, four times a second.
    """
    spinner = spinner or Spinner("dots")
    frame = spinner.render(time.monotonic())
    head = Text.assemble(frame, " ", ("running ", "bold"), elapsed_text(s.elapsed_s))
    share = s.share_read
    if share is not None:
        grid = Table.grid(padding=(0, 1))
        grid.add_row(head, ProgressBar(total=1.0, completed=share, width=30), f"{share:.0%}")
        head = grid
    items = [
        ("", f"{s.rows_read:,}", " rows read"),
        ("", f"{rate:,.0f}", " rows/s"),
        ("", f"{s.rows_written:,}", " written"),
        ("watermark ", watermark_text(s.watermark), ""),
        ("", f"{s.late_rows:,}", " late"),
    ]
    if s.checkpoints is not None:
        count, _, noun = _checkpoints_text(s.checkpoints).partition(" ")
        items.append(("", count, " " + noun))
    line = Text(no_wrap=True, overflow="ellipsis")
    for i, (before, value, after) in enumerate(items):
        line.append(" · " if i else "", style="dim")
        line.append(before, style="dim")
        line.append(value, style="bold")
        line.append(after, style="dim")
    return Group(head, line)


# -- what the job reads and writes ------------------------------------------------------------


def total_rows(job: Job) -> int | None:
    """Rows the job's sources hold in all, when every one is bounded and says so cheaply
    (datagen's 'number-of-rows', parquet files' footers); None otherwise, and for a job
    restored from a checkpoint (it starts part-way through its input).
    """
    if job.restore_from is not None:
        return None
    total = 0
    for task in job.graph.tasks:
        if not task.is_source:
            continue
        try:
            n = _row_count(task.head.table)  # type: ignore[attr-defined]
        except (StreamSQLError, OSError, pa.ArrowException):
            n = None  # a count that cannot be had cheaply is no count
        if n is None:
            return None
        total += n
    return total


def _row_count(table: CatalogTable) -> int | None:
    if not table.connector.is_bounded(table.context):
        return None
    opts = table.validate_for("source")
    match table.connector.name:
        case "datagen":
            return opts.get("number-of-rows")
        case "filesystem" if opts.get("format") == "parquet":
            return sum(pq.ParquetFile(f).metadata.num_rows for f in list_files(opts["path"]))
    return None


def prints_to_terminal(job: Job) -> bool:
    """Whether a print sink of the job (or its late-rows table) writes to a terminal: its
    rows would run into a live status there.
    """
    for task in job.graph.tasks:
        for node in task.nodes:
            tables = [node.table] if isinstance(node, Sink) else []
            late = getattr(node, "late_sink", None)
            if late is not None:
                tables.append(late.table)
            for table in tables:
                if table.connector.name != "print":
                    continue
                to_stderr = table.validate_for("sink")["standard-error"]
                if _is_tty(sys.stderr if to_stderr else job.stdout or sys.stdout):
                    return True
    return False


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


# -- the display ------------------------------------------------------------------------------


def on_terminal(console: Console) -> bool:
    """Whether ``console`` writes to a terminal that takes cursor movement: a real one
    (FORCE_COLOR in a CI log does not count) and not a dumb one.
    """
    return console.is_interactive and _is_tty(console.file)


def progress_display(console: Console, wanted: bool | None, quiet: bool) -> JobProgress | None:
    """The display ``streamsql run`` shows (None: none). ``wanted`` is ``--progress``
    (True), ``--no-progress`` (False) or neither (None: on a terminal, unless ``quiet``).
    """
    terminal = on_terminal(console)
    if wanted is False or (wanted is None and (quiet or not terminal)):
        return None
    return JobProgress(console, live=terminal, forced=wanted is True)


class JobProgress:
    """Shows a job's progress on ``console`` while it runs, from a thread of its own: a
    live status when ``live``, else a plain line every second.

    On a terminal where the job's print sink writes its rows, the rows show the progress
    and a live status would break them up: it is left out then, or (``forced``) replaced
    by plain lines.
    """

    def __init__(self, console: Console, *, live: bool, forced: bool = False) -> None:
        self.console = console
        self.live = live
        self.forced = forced
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()
        #: Why the display gave up (it never stops the job), for a look in a debugger.
        self.error: BaseException | None = None

    @contextmanager
    def watching(self, session: Session) -> Iterator[None]:
        """Show the jobs ``session`` starts in the block; gone when the block is left."""
        session.on_job_start.append(self.start)
        try:
            yield
        finally:
            session.on_job_start.remove(self.start)
            self.stop()

    def start(self, job: Job) -> None:
        """Show ``job`` from now on (a ``Session.on_job_start`` hook)."""
        self.stop()
        live = self.live and not prints_to_terminal(job)
        if self.live and not live and not self.forced:
            return
        self._stop = stop = threading.Event()
        self._thread = threading.Thread(
            target=self._show, args=(job, live, stop), name="streamsql-progress", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and take a live status off the screen (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        try:
            if thread is not None:
                thread.join(timeout=5)
        finally:
            with self._lock:
                live, self._live = self._live, None
            if live is not None:
                live.stop()

    def _show(self, job: Job, live: bool, stop: threading.Event) -> None:
        interval = LIVE_INTERVAL_S if live else PLAIN_INTERVAL_S
        spinner = Spinner("dots")
        history: deque[Sample] = deque()
        try:
            total = total_rows(job)
            while not stop.wait(interval):
                s = sample_of(snapshot(job), total)
                history.append(s)
                while len(history) > 1 and history[1].elapsed_s <= s.elapsed_s - RATE_WINDOW_S:
                    history.popleft()
                rate = recent_rate(history)
                if live:
                    self._draw(live_view(s, rate, spinner), stop)
                else:
                    line = plain_line(s, rate)
                    self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        except Exception as e:  # a status that cannot be shown must not fail the job
            self.error = e

    def _draw(self, view: RenderableType, stop: threading.Event) -> None:
        """Show ``view`` in the live status, which comes up at the first refresh: a job
        done sooner leaves the screen alone.
        """
        with self._lock:
            if stop.is_set():  # stop() gave up waiting for this thread
                return
            if self._live is None:
                self._live = Live(
                    view,
                    console=self.console,
                    auto_refresh=False,
                    transient=True,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self._live.start(refresh=True)
            else:
                self._live.update(view, refresh=True)
