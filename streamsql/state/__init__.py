"""Operator state in DuckDB: the only place state tables are created, written and read."""

from streamsql.state.store import StateStore

__all__ = ["StateStore"]
