"""Changing what exists: update a version, rename a model, delete a version or a model."""

from __future__ import annotations

from aiohttp import web

from .. import changes
from ..keys import DB, LIFECYCLE
from .http import actor, body, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> str:
    return f"{request.match_info['name']}@{request.match_info['selector']}"


@routes.patch("/v1/models/{name}/versions/{selector}")
async def update_version(request: web.Request) -> web.Response:
    return reply(request, await changes.update_version(request.app[DB], _ref(request), await body(request),
                                                       actor(request)))


@routes.post("/v1/models/{name}/rename")
async def rename_model(request: web.Request) -> web.Response:
    return reply(request, await changes.rename_model(request.app[LIFECYCLE], request.match_info["name"],
                                                     await body(request), actor(request)))


@routes.delete("/v1/models/{name}/versions/{selector}")
async def delete_version(request: web.Request) -> web.Response:
    return reply(request, await changes.delete_version(request.app[LIFECYCLE], _ref(request), await body(request),
                                                       actor(request)))


@routes.delete("/v1/models/{name}")
async def delete_model(request: web.Request) -> web.Response:
    return reply(request, await changes.delete_model(request.app[LIFECYCLE], request.match_info["name"],
                                                     await body(request), actor(request)))
