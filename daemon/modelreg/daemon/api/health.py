"""GET /v1/health (no auth) and GET /v1/status."""

from __future__ import annotations

from aiohttp import web

from ..keys import BLOBS, CONFIG, HOOKS, STARTED, STORE, WATCHES
from ..services import health as health_service, status as status_service
from .http import reply

routes = web.RouteTableDef()


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    """200 ok, or 503 degraded with the reason while the database does not answer (PostgreSQL)."""
    code, view = await health_service.health(request.app[STORE])
    return reply(request, view, status=code)


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    app = request.app
    view = await status_service.status(app[STORE], app[WATCHES], app[BLOBS], home=app[CONFIG].home,
                                       started=app[STARTED])
    # How far this daemon's share of the cluster work has got (several daemons, issue 13).
    view["hooks"] = app[HOOKS].progress()
    if (feed := health_service.fanout(app[STORE])) is not None:
        view["events"] = feed
    return reply(request, view)
