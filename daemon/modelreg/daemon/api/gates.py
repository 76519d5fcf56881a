"""Gate rules: list, add, remove (per model and target stage or alias, or registry-wide)."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import GATES
from ..payloads import parse_gate
from .http import actor, body, reply

routes = web.RouteTableDef()


@routes.get("/v1/gates")
async def list_gates(request: web.Request) -> web.Response:
    q = request.query
    return reply(request, await request.app[GATES].list(q.get("model"), q.get("stage"), q.get("alias")))


@routes.post("/v1/gates")
async def add_gate(request: web.Request) -> web.Response:
    req = parse_gate(await body(request))
    gate = await request.app[GATES].add(req.model, req.stage, req.rule, req.timeout, actor(request), req.alias)
    return reply(request, gate, status=201)


@routes.delete("/v1/gates/{id}")
async def remove_gate(request: web.Request) -> web.Response:
    try:
        gid = int(request.match_info["id"])
        if not 0 <= gid < 2**63:  # SQLite integers are 64-bit: a bigger one is a 500, not a 404
            raise ValueError
    except ValueError:
        raise InvalidInput("gate id must be a number") from None
    return reply(request, await request.app[GATES].remove(gid, actor(request)))
