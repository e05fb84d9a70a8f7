"""Connectors by name: every connector module is imported here so that it registers itself."""

from __future__ import annotations

from streamsql.connectors import (  # noqa: F401
    blackhole,
    datagen,
    duckdb_table,
    filesystem,
    memory,
    printer,
)
from streamsql.connectors.base import REGISTRY, Connector


def get_connector(name: str) -> Connector:
    """The connector registered under ``name`` (case-insensitive), or a ConfigError.

    >>> get_connector("datagen").name
    'datagen'
    """
    return REGISTRY.get(name)


__all__ = ["REGISTRY", "Connector", "get_connector"]
