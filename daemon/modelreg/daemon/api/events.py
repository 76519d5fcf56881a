"""GET /v1/events: the event log, paged by id."""

from __future__ import annotations

from aiohttp import web

from ..keys import STORE
from ..services import audit
from .http import query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """Events after ``after`` (oldest first), or the newest ``limit`` when no ``after`` is given."""
    after = query_int(request, "after")
    limit = query_int(request, "limit", 100)
    return reply(request, await audit.list_events(request.app[STORE], model=request.query.get("model"),
                                                  kind=request.query.get("kind"), after=after, limit=limit))
