"""The PostgreSQL backend: one registry shared by several daemons (PRODUCT.md §12)."""

from __future__ import annotations

from typing import Any

from ..sql import Aggregates
from .engine import PostgresEngine


class PostgresStore(Aggregates):
    backend = "postgresql"

    def __init__(self, dsn: str) -> None:
        super().__init__(PostgresEngine(dsn))
        self.where = self.engine.where  # host:port/database, no password

    def commit_stats(self) -> dict[str, int | str]:
        return {"backend": self.backend, "writes": self.engine.commits, "commits": self.engine.commits,
                "retries": self.engine.retries}

    async def durability(self) -> dict[str, Any]:
        """What the server says about durability (it, not the daemon, keeps the data)."""
        return await self.engine.settings()
