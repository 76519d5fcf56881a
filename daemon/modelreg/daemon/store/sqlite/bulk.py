"""Bulk seeding of large registries (benchmarks) (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class BulkStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
