"""Stage transitions, rollback, history, aliases, serving targets (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class StageStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
