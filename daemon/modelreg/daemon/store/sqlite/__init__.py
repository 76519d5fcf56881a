"""The SQLite backend: the embedded default (PRODUCT.md §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..sql import Aggregates
from .engine import SqliteEngine


class SqliteStore(Aggregates):
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__(SqliteEngine(path))
        self.where = str(path)

    def commit_stats(self) -> dict[str, int | str]:
        """Group commit at work: writes acknowledged and the commits (fsyncs) they took."""
        return {"backend": self.backend, "writes": self.engine.grouped_writes, "commits": self.engine.groups}

    async def durability(self) -> dict[str, Any]:
        """The live connections' journal mode, synchronous level, foreign keys (issue 11)."""
        return await self.engine.settings()
