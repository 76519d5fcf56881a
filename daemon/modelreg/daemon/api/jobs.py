"""GET /v1/jobs/{id}: progress of long work; ``?wait=S`` blocks up to S seconds for the end."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..keys import JOBS
from .http import query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    job = request.app[JOBS].get(request.match_info["id"])
    wait = min(query_int(request, "wait", 0) or 0, 60)
    if wait and job.state == "running":
        try:
            await asyncio.wait_for(job.wait(), wait)
        except asyncio.TimeoutError:
            pass
    return reply(request, job.view())
