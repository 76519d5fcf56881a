"""Creating versions: pending, ready, failed, recovery (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class VersionStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
