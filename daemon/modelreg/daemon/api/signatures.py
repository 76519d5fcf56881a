"""Signed models (issue 12): the trusted keys (admin: api/policy.py), and a version's signature bundle."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import SIGNING
from .http import actor, body, reply

routes = web.RouteTableDef()
BUNDLE = "/v1/models/{name}/versions/{selector}/signature"


@routes.get("/v1/trust")
async def list_keys(request: web.Request) -> web.Response:
    return reply(request, await request.app[SIGNING].keys())


@routes.post("/v1/trust")
async def add_key(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput("the body is an object: {name, pem} (the PEM text of a public key or a certificate)")
    return reply(request, await request.app[SIGNING].trust(data.get("name"), data.get("pem"), actor(request)),
                 status=201)


@routes.delete("/v1/trust/{name}")
async def remove_key(request: web.Request) -> web.Response:
    return reply(request, await request.app[SIGNING].untrust(request.match_info["name"], actor(request)))


@routes.get(BUNDLE)
async def get_bundle(request: web.Request) -> web.StreamResponse:
    path, sha = await request.app[SIGNING].bundle_path(_ref(request))
    return web.FileResponse(path, headers={"X-Content-SHA256": sha, "Content-Type": "application/json"})


@routes.put(BUNDLE)
async def attach_bundle(request: web.Request) -> web.Response:
    data = await body(request)
    if not isinstance(data, dict):
        raise InvalidInput('the body is an object: {"sha256": …} naming a bundle uploaded to /v1/blobs')
    return reply(request, await request.app[SIGNING].attach(_ref(request), data.get("sha256"), actor(request)))


def _ref(request: web.Request) -> str:
    return f"{request.match_info['name']}@{request.match_info['selector']}"
