"""Retention and garbage collection (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class GcStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
