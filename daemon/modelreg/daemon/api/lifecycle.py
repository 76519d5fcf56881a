"""Lifecycle routes: gate dry-run, transitions, rollback, history, aliases."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import LIFECYCLE
from .http import actor, body, query_int, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> str:
    return f"{request.match_info['name']}@{request.match_info['selector']}"


def _obj(data: object) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput("body must be an object")
    return data


@routes.get("/v1/models/{name}/versions/{selector}/check")
async def check(request: web.Request) -> web.Response:
    to = request.query.get("to")
    if not to:
        raise InvalidInput("query parameter 'to' (staging or production) is required")
    return reply(request, await request.app[LIFECYCLE].check(_ref(request), to))


@routes.post("/v1/models/{name}/versions/{selector}/transition")
async def transition(request: web.Request) -> web.Response:
    data = _obj(await body(request))
    if not isinstance(data.get("force", False), bool):
        raise InvalidInput("force must be true or false")
    result = await request.app[LIFECYCLE].transition(
        _ref(request), data.get("to") or "production", actor(request), data.get("reason") or "", data.get("force", False))
    return reply(request, result)


@routes.post("/v1/models/{name}/rollback")
async def rollback(request: web.Request) -> web.Response:
    data = _obj(await body(request))
    to = data.get("to")
    if to is not None and (isinstance(to, bool) or not isinstance(to, int) or to < 1):
        raise InvalidInput("to must be a version number")
    return reply(request, await request.app[LIFECYCLE].rollback(
        request.match_info["name"], actor(request), data.get("reason") or "", to))


@routes.get("/v1/models/{name}/history")
async def history(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 200)
    if not 1 <= limit <= 10000:
        raise InvalidInput("limit must be between 1 and 10000")
    return reply(request, await request.app[LIFECYCLE].history(request.match_info["name"], request.query.get("at"), limit))


@routes.get("/v1/models/{name}/aliases")
async def aliases(request: web.Request) -> web.Response:
    return reply(request, await request.app[LIFECYCLE].aliases(request.match_info["name"]))


@routes.put("/v1/models/{name}/aliases/{alias}")
async def set_alias(request: web.Request) -> web.Response:
    data = _obj(await body(request))
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput("version must be a version number")
    return reply(request, await request.app[LIFECYCLE].set_alias(
        request.match_info["name"], request.match_info["alias"], version, actor(request)))


@routes.delete("/v1/models/{name}/aliases/{alias}")
async def remove_alias(request: web.Request) -> web.Response:
    return reply(request, await request.app[LIFECYCLE].remove_alias(
        request.match_info["name"], request.match_info["alias"], actor(request)))
