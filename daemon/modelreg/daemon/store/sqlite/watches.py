"""Drop-folder watches and the ingest journal (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class WatchStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
