"""GET /v1/health (no auth) and GET /v1/status."""

from __future__ import annotations

import os
import time

from aiohttp import web

from modelreg.shared.timefmt import iso

from .. import __version__
from ..keys import CONFIG, DB, STARTED, WATCHES
from .http import reply

routes = web.RouteTableDef()


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    return reply(request, {"status": "ok", "version": __version__})


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    db = request.app[DB]
    cfg = request.app[CONFIG]
    counts = await db.one(
        "SELECT (SELECT count(*) FROM models WHERE deleted_at IS NULL) AS models, "
        "(SELECT count(*) FROM versions WHERE deleted_at IS NULL) AS versions, "
        "(SELECT count(*) FROM blobs) AS blobs, (SELECT coalesce(sum(size), 0) FROM blobs) AS blob_bytes, "
        "(SELECT count(*) FROM versions WHERE stage = 'production') AS production, "
        "(SELECT count(*) FROM versions WHERE status = 'pending' AND deleted_at IS NULL) AS pending, "
        "(SELECT max(id) FROM events) AS last_event")
    watches = await request.app[WATCHES].list()
    return reply(request, {
        "status": "ok", "version": __version__, "pid": os.getpid(), "home": str(cfg.home),
        "started_at": iso(request.app[STARTED]), "uptime_s": round(time.time() - request.app[STARTED], 1),
        **dict(counts), "watches": watches,
    })
