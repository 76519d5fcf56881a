"""Promotion gate rules (SQLite)."""

from __future__ import annotations

from .engine import SqliteEngine


class GateStore:
    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine
