"""Metric records and latest values (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class MetricStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
