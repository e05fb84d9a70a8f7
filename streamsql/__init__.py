"""streamsql: an embeddable streaming SQL engine (Flink SQL over Arrow micro-batches)."""

from __future__ import annotations

__version__ = "0.1.0"
