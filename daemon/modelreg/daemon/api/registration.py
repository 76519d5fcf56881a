"""Writing versions: register one, record its metrics."""

from __future__ import annotations

from aiohttp import web

from ..keys import REGISTRAR, STORE
from ..payloads import parse_registration
from ..services import metrics as metrics_service
from .http import actor, body, query_bool, reply

routes = web.RouteTableDef()


@routes.post("/v1/models/{name}/versions")
async def register(request: web.Request) -> web.Response:
    reg = parse_registration(await body(request))
    registrar = request.app[REGISTRAR]
    done = await registrar.register(request.match_info["name"], reg, actor(request))
    job = done.job
    if job is None:
        return reply(request, {"version": done.view, "job": None}, status=201)
    if request.transport is None or request.transport.is_closing():
        job.cancel()  # the client left (Ctrl-C) before it learnt the job: nobody would ever cancel it
    if query_bool(request, "wait"):
        view = await registrar.wait(done)
        return reply(request, {"version": view, "job": job.view()}, status=201)
    return reply(request, {"version": done.view, "job": job.view()}, status=202)


@routes.post("/v1/models/{name}/versions/{selector}/metrics")
async def record_metrics(request: web.Request) -> web.Response:
    ref = f"{request.match_info['name']}@{request.match_info['selector']}"
    view = await metrics_service.record(request.app[STORE], ref, await body(request), actor(request))
    return reply(request, view, status=201)
