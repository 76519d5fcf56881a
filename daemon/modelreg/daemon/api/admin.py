"""POST /v1/verify: re-hash the store (or one version) as a job."""

from __future__ import annotations

import asyncio

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from .. import verify
from ..keys import BLOBS, DB, JOBS, POOL, TASKS
from .http import body, query_bool, reply

routes = web.RouteTableDef()


@routes.post("/v1/verify")
async def start_verify(request: web.Request) -> web.Response:
    data = await body(request) or {}
    if not isinstance(data, dict):
        raise InvalidInput("body must be an object")
    ref = data.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise InvalidInput("ref must be a string such as fraud@3")
    db = request.app[DB]
    blobs = await verify.blobs_to_check(db, ref)
    job = request.app[JOBS].create("verify", total=sum(b["size"] for b in blobs))

    async def run() -> None:
        try:
            job.succeed(await verify.run_verify(db, request.app[BLOBS], request.app[POOL], job, blobs))
        except Exception as exc:  # noqa: BLE001 - reported through the job
            job.fail(exc)

    task = asyncio.create_task(run())
    request.app[TASKS].add(task)
    task.add_done_callback(request.app[TASKS].discard)
    if query_bool(request, "wait"):
        await job.wait()
        return reply(request, job.view(), status=200)
    return reply(request, job.view(), status=202)
