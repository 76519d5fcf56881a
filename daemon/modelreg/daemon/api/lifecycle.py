"""Lifecycle routes: gate dry-run, transitions, rollback, history, aliases.

A move that an ``approvals`` gate holds back answers 202 with the approval request it opened.
"""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import LIFECYCLE
from ..payloads import parse_alias, parse_rollback, parse_transition
from .http import body, identity, query_int, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> str:
    return f"{request.match_info['name']}@{request.match_info['selector']}"


@routes.get("/v1/models/{name}/versions/{selector}/check")
async def check(request: web.Request) -> web.Response:
    to = request.query.get("to")
    if not to:
        raise InvalidInput("query parameter 'to' (staging or production) is required")
    return reply(request, await request.app[LIFECYCLE].check(_ref(request), to, identity(request)))


@routes.post("/v1/models/{name}/versions/{selector}/transition")
async def transition(request: web.Request) -> web.Response:
    req = parse_transition(await body(request))
    return _moved(request, await request.app[LIFECYCLE].transition(_ref(request), req.to, identity(request),
                                                                   req.reason, req.force))


@routes.post("/v1/models/{name}/rollback")
async def rollback(request: web.Request) -> web.Response:
    to, reason = parse_rollback(await body(request))
    return reply(request, await request.app[LIFECYCLE].rollback(request.match_info["name"], identity(request), reason, to))


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
    req = parse_alias(await body(request))
    return _moved(request, await request.app[LIFECYCLE].set_alias(
        request.match_info["name"], request.match_info["alias"], req.version, identity(request), req.reason, req.force))


@routes.delete("/v1/models/{name}/aliases/{alias}")
async def remove_alias(request: web.Request) -> web.Response:
    return reply(request, await request.app[LIFECYCLE].remove_alias(
        request.match_info["name"], request.match_info["alias"], identity(request)))


@routes.put("/v1/models/{name}/aliases/{alias}/protection")
async def protect_alias(request: web.Request) -> web.Response:
    return reply(request, await request.app[LIFECYCLE].protect_alias(
        request.match_info["name"], request.match_info["alias"], True, identity(request)))


@routes.delete("/v1/models/{name}/aliases/{alias}/protection")
async def unprotect_alias(request: web.Request) -> web.Response:
    return reply(request, await request.app[LIFECYCLE].protect_alias(
        request.match_info["name"], request.match_info["alias"], False, identity(request)))


def _moved(request: web.Request, result: dict) -> web.Response:
    """A move's answer: 200, or 202 when it opened an approval request instead."""
    return reply(request, result, 202 if "request" in result else 200)
