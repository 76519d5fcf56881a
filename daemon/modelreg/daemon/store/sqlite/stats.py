"""Counts for health and admin (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class StatsStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
