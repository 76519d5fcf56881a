"""GET /v1/events: the event log, paged by id."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import validate_name

from ..events import event_from_row
from ..keys import DB
from .http import query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """Events after ``after`` (oldest first), or the newest ``limit`` when no ``after`` is given."""
    after = query_int(request, "after")
    limit = query_int(request, "limit", 100)
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    where, params = [], []
    if model := request.query.get("model"):
        where.append("model = ? COLLATE NOCASE")
        params.append(validate_name(model))
    if kind := request.query.get("kind"):
        where.append("kind GLOB ?")
        params.append(kind[:100])
    if after is not None:
        where.append("id > ?")
        params.append(after)
    cond = ("WHERE " + " AND ".join(where)) if where else ""
    order = "ASC" if after is not None else "DESC"
    rows = await request.app[DB].all(f"SELECT * FROM events {cond} ORDER BY id {order} LIMIT ?", (*params, limit))
    items = [event_from_row(r) for r in rows]
    if after is None:
        items.reverse()
    return reply(request, {"items": items, "last_id": items[-1]["id"] if items else after})
