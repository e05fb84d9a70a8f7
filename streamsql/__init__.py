"""streamsql: an embeddable streaming SQL engine (Flink SQL over Arrow micro-batches)."""

from __future__ import annotations

from streamsql.errors import (
    BindError,
    ConfigError,
    ExecError,
    ParseError,
    PlanError,
    StreamSQLError,
)
from streamsql.runtime.job import JobResult
from streamsql.session import ExecuteResult, QueryHandle, Session, connect

__version__ = "0.1.0"

__all__ = [
    "BindError",
    "ConfigError",
    "ExecError",
    "ExecuteResult",
    "JobResult",
    "ParseError",
    "PlanError",
    "QueryHandle",
    "Session",
    "StreamSQLError",
    "connect",
]
