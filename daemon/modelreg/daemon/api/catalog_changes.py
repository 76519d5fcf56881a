"""Changing what exists: update a version, rename a model, delete a version or a model."""

from __future__ import annotations

from aiohttp import web

from ..keys import CONFIG, LIFECYCLE, POOL, STORE
from ..services import changes
from .http import actor, body, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> str:
    return f"{request.match_info['name']}@{request.match_info['selector']}"


@routes.patch("/v1/models/{name}/versions/{selector}")
async def update_version(request: web.Request) -> web.Response:
    return reply(request, await changes.update_version(request.app[STORE], _ref(request), await body(request),
                                                       actor(request)))


@routes.post("/v1/models/{name}/rename")
async def rename_model(request: web.Request) -> web.Response:
    app = request.app
    return reply(request, await changes.rename_model(app[STORE], app[POOL], app[CONFIG].home,
                                                     app[LIFECYCLE].refresh_serving, request.match_info["name"],
                                                     await body(request), actor(request)))


@routes.delete("/v1/models/{name}/versions/{selector}")
async def delete_version(request: web.Request) -> web.Response:
    return reply(request, await changes.delete_version(request.app[STORE], request.app[LIFECYCLE].refresh_serving,
                                                       _ref(request), await body(request), actor(request)))


@routes.delete("/v1/models/{name}")
async def delete_model(request: web.Request) -> web.Response:
    app = request.app
    return reply(request, await changes.delete_model(app[STORE], app[POOL], app[CONFIG].home,
                                                     request.match_info["name"], await body(request), actor(request)))
