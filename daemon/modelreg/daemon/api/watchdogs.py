"""Watchdogs: list (with their state), add and remove (admin: api/policy.py)."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import WATCHDOGS
from .http import body, identity, reply

routes = web.RouteTableDef()


@routes.get("/v1/watchdogs")
async def list_all(request: web.Request) -> web.Response:
    return reply(request, await request.app[WATCHDOGS].list())


@routes.get("/v1/models/{name}/watchdogs")
async def list_model(request: web.Request) -> web.Response:
    return reply(request, await request.app[WATCHDOGS].list(request.match_info["name"]))


@routes.post("/v1/models/{name}/watchdogs")
async def add(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput("the body is an object: {rule, rollback?, cooldown?}")
    added = await request.app[WATCHDOGS].add(request.match_info["name"], data.get("rule"),
                                             data.get("rollback", False), data.get("cooldown"), identity(request))
    return reply(request, added, status=201)


@routes.delete("/v1/watchdogs/{id}")
async def remove(request: web.Request) -> web.Response:
    try:
        watchdog_id = int(request.match_info["id"])
        if not 0 <= watchdog_id < 2**63:  # SQLite integers are 64-bit: a bigger one is a 500, not a 404
            raise ValueError
    except ValueError:
        raise InvalidInput("watchdog id must be a number") from None
    return reply(request, await request.app[WATCHDOGS].remove(watchdog_id, identity(request)))
