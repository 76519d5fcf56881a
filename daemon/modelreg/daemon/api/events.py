"""GET /v1/events: the event log, paged by id; a model-limited token sees its models' events
(``policy.sees_event``; a page may then hold fewer than ``limit``, and ``last_id`` pages on)."""

from __future__ import annotations

from aiohttp import web

from ..keys import STORE
from ..services import audit
from .http import identity, query_int, reply
from .policy import sees_event

routes = web.RouteTableDef()


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """Events after ``after`` (oldest first), or the newest ``limit`` when no ``after`` is given."""
    after = query_int(request, "after")
    limit = query_int(request, "limit", 100)
    page = await audit.list_events(request.app[STORE], model=request.query.get("model"),
                                   kind=request.query.get("kind"), after=after, limit=limit)
    who = identity(request)
    if who.models is not None:
        page["items"] = [e for e in page["items"] if sees_event(who, e)]
    return reply(request, page)
