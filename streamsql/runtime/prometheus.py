"""The Prometheus endpoint: jobs' metrics in the text exposition format, over HTTP.

``streamsql run --metrics-port N`` starts a :class:`MetricsServer`; every job the session
starts is watched, and each scrape of ``/metrics`` reads the jobs' counters live (a job
runs on another thread: :func:`snapshot` copies what it needs). One sample per operator
instance, labelled ``job``, ``task``, ``node`` (the operator's place in its task's chain),
``operator`` and ``instance``::

    # HELP streamsql_operator_rows_in_total Rows the operator instance consumed.
    # TYPE streamsql_operator_rows_in_total counter
    streamsql_operator_rows_in_total{job="streamsql-1",task="2",node="0",\
    operator="WindowAggregate",instance="0"} 1500

(one line, broken here to fit).

Counters: rows and batches in/out, busy and backpressured seconds, late rows, dropped
events. Gauges: utilization, backpressured and headroom ratios (of the job's elapsed time
so far), queued batches and queue capacity, watermark and watermark lag (ms), state rows
and their peak. Per job: elapsed seconds, whether it runs, rows read per source table,
rows written. A Prometheus server that scrapes this endpoint adds its own ``job`` and
``instance`` labels; set ``honor_labels: true`` in its scrape config to keep these.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamsql.runtime.job import Job, JobResult
from streamsql.runtime.metrics import Figures, instance_figures
from streamsql.runtime.timeutil import MAX_WATERMARK

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Family:
    """A metric family: its name, type, help text and its value in a row of figures
    (None: no sample for that row).
    """

    name: str
    kind: str  # counter or gauge
    help: str
    value: Callable[[Figures], float | None]


OPERATOR_FAMILIES = (
    Family("rows_in_total", "counter", "Rows the operator instance consumed.", lambda f: f.rows_in),
    Family(
        "rows_out_total", "counter", "Rows the operator instance produced.", lambda f: f.rows_out
    ),
    Family("batches_in_total", "counter", "Batches consumed.", lambda f: f.batches_in),
    Family("batches_out_total", "counter", "Batches produced.", lambda f: f.batches_out),
    Family("busy_seconds_total", "counter", "Seconds spent in the operator.", lambda f: f.busy_s),
    Family(
        "backpressured_seconds_total",
        "counter",
        "Seconds waited for room in a full output channel.",
        lambda f: f.blocked_s,
    ),
    Family(
        "late_rows_dropped_total",
        "counter",
        "Rows dropped because their window had fired.",
        lambda f: f.late_rows,
    ),
    Family(
        "events_dropped_total",
        "counter",
        "Events shed under 'execution.overload.policy' = 'drop'.",
        lambda f: f.events_dropped,
    ),
    Family(
        "utilization_ratio",
        "gauge",
        "Share of the job's elapsed time spent in the operator (busy).",
        lambda f: f.utilization,
    ),
    Family(
        "backpressured_ratio",
        "gauge",
        "Share of the job's elapsed time blocked on a full output channel.",
        lambda f: f.backpressured,
    ),
    Family("headroom_ratio", "gauge", "1 - utilization.", lambda f: f.headroom),
    Family(
        "queued_batches",
        "gauge",
        "Batches waiting in the input channel.",
        lambda f: f.queued_batches,
    ),
    Family(
        "queue_capacity_batches",
        "gauge",
        "Capacity of the input channel in batches (0: no channel).",
        lambda f: f.queue_capacity,
    ),
    Family(
        "watermark_milliseconds",
        "gauge",
        "Event-time watermark reached, epoch ms (+Inf: end of input).",
        lambda f: None if f.watermark is None else _watermark(f.watermark),
    ),
    Family(
        "watermark_lag_milliseconds",
        "gauge",
        "Event time between the job's newest (source) watermark and this one's.",
        lambda f: f.watermark_lag_ms,
    ),
    Family(
        "state_rows", "gauge", "Rows held in state (sampled while running).", lambda f: f.state_rows
    ),
    Family(
        "state_rows_peak",
        "gauge",
        "The most rows held in state so far.",
        lambda f: f.state_rows_peak,
    ),
)


def exposition(jobs: Iterable[tuple[JobResult, bool]]) -> str:
    """The text format of ``jobs`` (each a result and whether it still runs)."""
    jobs = list(jobs)
    out: list[str] = []

    def family(name: str, kind: str, text: str, samples: list[str]) -> None:
        out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples])

    family(
        "streamsql_job_running",
        "gauge",
        "1 while the job runs, 0 once it ended.",
        [f"streamsql_job_running{_labels(job=r.name)} {int(live)}" for r, live in jobs],
    )
    family(
        "streamsql_job_elapsed_seconds",
        "gauge",
        "Seconds the job has run.",
        [
            f"streamsql_job_elapsed_seconds{_labels(job=r.name)} {_num(r.elapsed_s)}"
            for r, _ in jobs
        ],
    )
    family(
        "streamsql_job_rows_written_total",
        "counter",
        "Rows the job's sinks wrote.",
        [
            f"streamsql_job_rows_written_total{_labels(job=r.name)} {r.rows_written}"
            for r, _ in jobs
        ],
    )
    family(
        "streamsql_source_rows_read_total",
        "counter",
        "Rows read from each source table.",
        [
            f"streamsql_source_rows_read_total{_labels(job=r.name, table=t)} "
            f"{counters.get('rows_read', 0)}"
            for r, _ in jobs
            for t, counters in sorted(r.sources.items())
        ],
    )
    rows = [(r.name, f) for r, _ in jobs for f in instance_figures(r)]
    for fam in OPERATOR_FAMILIES:
        name = f"streamsql_operator_{fam.name}"
        samples = []
        for job, f in rows:
            value = fam.value(f)
            if value is None:
                continue
            labels = _labels(
                job=job, task=f.task, node=f.node, operator=f.operator, instance=f.instance
            )
            samples.append(f"{name}{labels} {_num(value)}")
        family(name, fam.kind, fam.help, samples)
    return "\n".join(out) + "\n"


def snapshot(job: Job) -> JobResult:
    """The result of a job that may be running on another thread: its counters copied,
    so that they stay put while being written out.
    """
    for attempt in range(5):
        try:
            result = job.result()
            break
        except RuntimeError:  # a counter dict grew while it was read: read again
            if attempt == 4:
                raise
    # dict(...) copies in one step under the GIL; plain attributes are read atomically.
    return replace(result, operators=[replace(m, extra=dict(m.extra)) for m in result.operators])


class MetricsServer:
    """Serves ``/metrics`` for the jobs it watches, from a daemon thread.

    >>> server = MetricsServer(port=0).start()
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> server.close()
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.jobs: list[Job] = []
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="streamsql-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.httpd.server_address[0])
        return f"http://{host}:{self.port}/metrics"

    def watch(self, job: Job) -> None:
        """Serve ``job``'s metrics from now on (and its final ones after it ends)."""
        self.jobs.append(job)

    def text(self) -> str:
        """The exposition of every watched job, as a scrape returns it."""
        return exposition((snapshot(job), job.finished is None) for job in list(self.jobs))

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "metrics are at /metrics")
                return
            body = server.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds would flood the job's stderr

    return Handler


def _labels(**labels: object) -> str:
    """``{k="v",...}`` with values escaped as the format requires."""
    parts = []
    for k, v in labels.items():
        text = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{k}="{text}"')
    return "{" + ",".join(parts) + "}"


def _num(value: float) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if math.isnan(value):
            return "NaN"
        return repr(value)
    return str(value)


def _watermark(ms: int) -> float:
    return math.inf if ms >= MAX_WATERMARK else ms
