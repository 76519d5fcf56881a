"""POST /v1/audit/verify (the hash chain) and POST /v1/gc (retention)."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from .. import gc
from ..events import verify_chain
from ..keys import BLOBS, CONFIG, DB, POOL
from .http import actor, body, reply

routes = web.RouteTableDef()


@routes.post("/v1/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    return reply(request, await verify_chain(request.app[DB]))


@routes.post("/v1/gc")
async def run_gc(request: web.Request) -> web.Response:
    data = await body(request) or {}
    if not isinstance(data, dict):
        raise InvalidInput("body must be an object")
    dry_run = data.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false")
    days = data.get("retention_days", gc.RETENTION_DAYS)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or days < gc.RETENTION_DAYS:
        raise InvalidInput(f"retention_days must be a number of at least {gc.RETENTION_DAYS}")
    app = request.app
    return reply(request, await gc.run(app[DB], app[BLOBS], app[POOL], app[CONFIG].home, dry_run=dry_run,
                                       actor=actor(request), retention_days=days))
