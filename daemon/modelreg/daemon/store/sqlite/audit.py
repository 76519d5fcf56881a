"""Reading and verifying the event chain (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class AuditStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
