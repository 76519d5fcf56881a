"""Watched drop folders: list, add, remove."""

from __future__ import annotations

from aiohttp import web

from ..keys import WATCHES
from .http import actor, body, reply

routes = web.RouteTableDef()


@routes.get("/v1/watches")
async def list_watches(request: web.Request) -> web.Response:
    return reply(request, {"items": await request.app[WATCHES].list()})


@routes.post("/v1/watches")
async def add_watch(request: web.Request) -> web.Response:
    watch = await request.app[WATCHES].add(await body(request), actor(request))
    return reply(request, watch, status=201)


@routes.delete("/v1/watches/{key:.+}")
async def remove_watch(request: web.Request) -> web.Response:
    """Remove by id or by path (URL-encoded)."""
    return reply(request, await request.app[WATCHES].remove(request.match_info["key"], actor(request)))
