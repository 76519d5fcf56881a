"""Reading and verifying the event chain."""

from __future__ import annotations

from typing import Any

from . import events
from .tx import Sql, Engine


def list_events(q: Sql, *, model: str | None, kind: str | None, after: int | None, limit: int) -> list[dict[str, Any]]:
    """Events after ``after`` (oldest first), or the newest ``limit`` (returned oldest first)."""
    where, params = [], []
    if model:
        where.append("lower(model) = lower(?)")
        params.append(model)
    if kind:
        sql, args = q.dialect.glob("kind", kind)
        where.append(sql)
        params.extend(args)
    if after is not None:
        where.append("id > ?")
        params.append(after)
    cond = ("WHERE " + " AND ".join(where)) if where else ""
    order = "ASC" if after is not None else "DESC"
    items = [events.event_view(r) for r in q.all(f"SELECT * FROM events {cond} ORDER BY id {order} LIMIT ?",
                                                  (*params, limit))]
    if after is None:
        items.reverse()
    return items


def events_after(q: Sql, after: int, limit: int) -> list[dict[str, Any]]:
    return [events.event_view(r) for r in q.all("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                                 (after, limit))]


def last_event_id(q: Sql) -> int:
    return q.one("SELECT coalesce(max(id), 0) AS last FROM events")["last"]


class AuditStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def list(self, *, model: str | None = None, kind: str | None = None, after: int | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        """A page of the log (API views, oldest first): filtered by model (any case) and kind glob."""
        return await self.engine.read(lambda q: list_events(q, model=model, kind=kind, after=after, limit=limit))

    async def after(self, event_id: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` events after ``event_id``, oldest first (stream and hook catch-up)."""
        return await self.engine.read(lambda q: events_after(q, event_id, limit))

    async def last_id(self) -> int:
        """The newest event's id (0 for an empty log)."""
        return await self.engine.read(last_event_id)

    async def chain_head(self) -> tuple[int, str] | None:
        """The recorded head (id, hash): read before a verify walk, which checks up to it."""
        return await self.engine.read(events.chain_head)

    async def verify_batch(self, head: tuple[int, str] | None, prev: str | None, next_id: int, checked: int,
                           batch: int) -> tuple[dict[str, Any] | None, str, int, int]:
        """Check the next ``batch`` rows after ``prev`` (a hash; None: the start of the chain):
        (verdict, or None to go on; prev hash; next id; checked)."""
        start = events.GENESIS if prev is None else prev
        return await self.engine.read(lambda q: events.verify_batch(q, head, start, next_id, checked, batch))
