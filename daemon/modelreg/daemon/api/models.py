"""Models: list, create, get, update (rename and delete: catalog_changes.py)."""

from __future__ import annotations

from aiohttp import web

from ..keys import STORE
from ..services import catalog, changes
from .http import actor, body, query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    return reply(request, await catalog.list_models(
        request.app[STORE], query=request.query.get("q"), limit=query_int(request, "limit", catalog.DEFAULT_PAGE),
        cursor=request.query.get("cursor")))


@routes.post("/v1/models")
async def create_model(request: web.Request) -> web.Response:
    return reply(request, await catalog.create_model(request.app[STORE], await body(request), actor(request)),
                 status=201)


@routes.get("/v1/models/{name}")
async def get_model(request: web.Request) -> web.Response:
    return reply(request, await catalog.get_model(request.app[STORE], request.match_info["name"]))


@routes.patch("/v1/models/{name}")
async def update_model(request: web.Request) -> web.Response:
    return reply(request, await changes.update_model(request.app[STORE], request.match_info["name"],
                                                     await body(request), actor(request)))
