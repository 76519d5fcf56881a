"""Watched drop folders: list, add, remove."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..ingest.manager import DEFAULT_SETTLE
from ..keys import WATCHES
from .http import actor, body, reply

routes = web.RouteTableDef()


@routes.get("/v1/watches")
async def list_watches(request: web.Request) -> web.Response:
    return reply(request, {"items": await request.app[WATCHES].list()})


@routes.post("/v1/watches")
async def add_watch(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput("body must be an object")
    poll = data.get("poll")
    if poll is not None and not isinstance(poll, bool):
        raise InvalidInput("poll must be true, false or absent (absent: decided from the filesystem type)")
    watch = await request.app[WATCHES].add(data.get("path"), data.get("model"), data.get("mode", "move"),
                                           data.get("settle", DEFAULT_SETTLE), poll, actor(request),
                                           include=data.get("include"), exclude=data.get("exclude"))
    return reply(request, watch, status=201)


@routes.delete("/v1/watches/{key:.+}")
async def remove_watch(request: web.Request) -> web.Response:
    """Remove by id or by path (URL-encoded)."""
    return reply(request, await request.app[WATCHES].remove(request.match_info["key"], actor(request)))
