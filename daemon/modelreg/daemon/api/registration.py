"""Writing versions: register one, record its metrics."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import Conflict, InvalidInput, from_envelope
from modelreg.shared.names import Ref, parse_ref

from .. import catalog, events, metrics
from ..keys import DB, REGISTRAR
from ..payloads import parse_metrics, parse_registration
from .http import actor, body, query_bool, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> Ref:
    return parse_ref(f"{request.match_info['name']}@{request.match_info['selector']}")


@routes.post("/v1/models/{name}/versions")
async def register(request: web.Request) -> web.Response:
    reg = parse_registration(await body(request))
    view, job = await request.app[REGISTRAR].register(request.match_info["name"], reg, actor(request))
    if job is None:
        return reply(request, {"version": view, "job": None}, status=201)
    if request.transport is None or request.transport.is_closing():
        job.cancel()  # the client left (Ctrl-C) before it learnt the job: nobody would ever cancel it
    if query_bool(request, "wait"):
        await job.wait()
        if job.state == "cancelled":
            raise Conflict(f"registering {view['model']}@{view['version']} was cancelled")
        if job.state == "failed":
            exc = from_envelope(422, {"error": job.error})
            exc.status = min(exc.status, 422)  # a generic storage error must not leave as a 5xx
            raise exc
        db = request.app[DB]
        view = await catalog.version_detail(db, await catalog.resolve(db, f"{view['model']}@{view['version']}"))
        return reply(request, {"version": view, "job": job.view()}, status=201)
    return reply(request, {"version": view, "job": job.view()}, status=202)


@routes.post("/v1/models/{name}/versions/{selector}/metrics")
async def record_metrics(request: web.Request) -> web.Response:
    data = await body(request)
    if isinstance(data, list):
        data = {"metrics": data}
    if not isinstance(data, dict) or not data.get("metrics"):
        raise InvalidInput('body needs "metrics": {"auc": 0.91} or [{"key": "auc", "value": 0.91}, ...]')
    records = parse_metrics(data.get("metrics"), default_source=data.get("source") or "offline")
    if data.get("dataset") is not None:
        extra = parse_metrics([{"key": "x", "value": 0, "dataset": data["dataset"]}])[0].dataset
        for r in records:
            r.dataset = r.dataset or extra
    db = request.app[DB]
    ref = _ref(request)
    async with db.transaction() as tx:
        row = await catalog.resolve(tx, ref)
        await metrics.record(tx, row["id"], records)
        await tx.execute("UPDATE versions SET updated_at = ? WHERE id = ?", (tx.now, row["id"]))
        await events.append(tx, "metric.recorded", actor(request), model=row["model_name"], version=row["number"],
                            data={"metrics": {r.key: r.value for r in records},
                                  "source": sorted({r.source for r in records})})
    row = await catalog.resolve(db, f"{row['model_name']}@{row['number']}")
    return reply(request, await catalog.version_detail(db, row), status=201)
