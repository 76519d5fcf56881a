"""Jobs: the list, progress of long work (``?wait=S`` blocks up to S seconds for the end), and cancelling it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..jobs import Job
from ..keys import JOBS
from .http import query_int, reply

routes = web.RouteTableDef()
MAX_WAIT_S = 60


async def _wait(job: Job, seconds: int) -> None:
    if seconds and job.state == "running":
        try:
            await asyncio.wait_for(job.wait(), seconds)
        except asyncio.TimeoutError:
            pass


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """The jobs the daemon knows (running first); ``?kind=register`` narrows it."""
    return reply(request, {"items": [j.view() for j in request.app[JOBS].list(request.query.get("kind"))]})


@routes.get("/v1/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    job = request.app[JOBS].get(request.match_info["id"])
    await _wait(job, min(query_int(request, "wait", 0) or 0, MAX_WAIT_S))
    return reply(request, job.view())


@routes.post("/v1/jobs/{id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """Ask a running job to stop; its ``state`` then says what happened (cancelled, or done first)."""
    job = request.app[JOBS].get(request.match_info["id"])
    job.cancel()
    await _wait(job, min(query_int(request, "wait", 10) or 0, MAX_WAIT_S))
    return reply(request, job.view())
