"""Counts for health and admin."""

from __future__ import annotations

from typing import Any

from .tx import Sql, Engine


def status_counts(q: Sql) -> dict[str, Any]:
    row = q.one(
        "SELECT (SELECT count(*) FROM models WHERE deleted_at IS NULL) AS models, "
        "(SELECT count(*) FROM versions WHERE deleted_at IS NULL) AS versions, "
        "(SELECT count(*) FROM blobs) AS blobs, (SELECT coalesce(sum(size), 0) FROM blobs) AS blob_bytes, "
        "(SELECT count(*) FROM versions WHERE stage = 'production') AS production, "
        "(SELECT count(*) FROM versions WHERE status = 'pending' AND deleted_at IS NULL) AS pending, "
        "(SELECT max(id) FROM events) AS last_event")
    return dict(row)


class StatsStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def counts(self) -> dict[str, Any]:
        """What /v1/status shows: models, versions, blobs, blob_bytes, production, pending, last_event."""
        return await self.engine.read(status_counts)
