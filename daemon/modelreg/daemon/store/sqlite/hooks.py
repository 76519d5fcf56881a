"""Hooks and their deliveries (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class HookStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
