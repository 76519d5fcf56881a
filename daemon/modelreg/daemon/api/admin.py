"""POST /v1/verify: re-hash the store (or one version) as a job."""

from __future__ import annotations

from aiohttp import web

from ..keys import BLOBS, JOBS, POOL, STORE, TASKS
from ..services import verify
from .http import body, query_bool, reply

routes = web.RouteTableDef()


@routes.post("/v1/verify")
async def start_verify(request: web.Request) -> web.Response:
    app = request.app
    job = await verify.start(app[STORE], app[BLOBS], app[POOL], app[JOBS], app[TASKS], await body(request))
    if query_bool(request, "wait"):
        await job.wait()
        return reply(request, job.view(), status=200)
    return reply(request, job.view(), status=202)
