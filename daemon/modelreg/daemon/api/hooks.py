"""Hooks: list, add, remove, and each hook's delivery log."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import STORE
from ..services import hooks
from .http import actor, body, query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/hooks")
async def list_hooks(request: web.Request) -> web.Response:
    return reply(request, await hooks.list_hooks(request.app[STORE]))


@routes.post("/v1/hooks")
async def add_hook(request: web.Request) -> web.Response:
    return reply(request, await hooks.add_hook(request.app[STORE], await body(request), actor(request)), status=201)


@routes.delete("/v1/hooks/{id}")
async def remove_hook(request: web.Request) -> web.Response:
    return reply(request, await hooks.remove_hook(request.app[STORE], _id(request), actor(request)))


@routes.get("/v1/hooks/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    hook_id = _id(request)
    return reply(request, await hooks.deliveries(request.app[STORE], hook_id, query_int(request, "limit", 100)))


def _id(request: web.Request) -> int:
    try:
        hid = int(request.match_info["id"])
        if not 0 <= hid < 2**63:  # SQLite integers are 64-bit: a bigger one is a 500, not a 404
            raise ValueError
        return hid
    except ValueError:
        raise InvalidInput("hook id must be a number") from None
