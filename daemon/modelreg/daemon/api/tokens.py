"""Named tokens: list, create, revoke (admin: the route policy, policy.py), and who the caller's own token is."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import TOKENS
from .http import actor, body, identity, reply

routes = web.RouteTableDef()


@routes.get("/v1/whoami")
async def whoami(request: web.Request) -> web.Response:
    me = identity(request)
    return reply(request, {"name": me.name, "scope": me.scope, "models": me.models, "actor": me.actor,
                           "home_token": me.token_id is None})


@routes.get("/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    return reply(request, await request.app[TOKENS].list())


@routes.post("/v1/tokens")
async def create_token(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput("the body is an object: {name, scope, models?, expires?}")
    created = await request.app[TOKENS].create(data.get("name"), data.get("scope"), data.get("models"),
                                               data.get("expires"), actor(request))
    return reply(request, created, status=201)


@routes.delete("/v1/tokens/{name}")
async def revoke_token(request: web.Request) -> web.Response:
    return reply(request, await request.app[TOKENS].revoke(request.match_info["name"], actor(request)))
