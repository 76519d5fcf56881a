"""POST /v1/audit/verify (the hash chain) and POST /v1/gc (retention)."""

from __future__ import annotations

from aiohttp import web

from ..keys import BLOBS, CONFIG, POOL, STORE
from ..services import audit, gc
from .http import actor, body, reply

routes = web.RouteTableDef()


@routes.post("/v1/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    return reply(request, await audit.verify_chain(request.app[STORE]))


@routes.post("/v1/gc")
async def run_gc(request: web.Request) -> web.Response:
    app = request.app
    return reply(request, await gc.collect(app[STORE], app[BLOBS], app[POOL], app[CONFIG].home, await body(request),
                                           actor=actor(request)))
