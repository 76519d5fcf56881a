"""Approval request routes (issue 12): list, read, approve, reject."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from ..keys import APPROVALS
from ..payloads import parse_vote
from .http import body, identity, query_bool, query_int, reply

routes = web.RouteTableDef()


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"an approval request id is a number, not {raw[:50]!r}")
    return int(raw)


@routes.get("/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    return reply(request, await request.app[APPROVALS].list(
        identity(request), request.query.get("model") or None, request.query.get("status") or None,
        query_bool(request, "mine"), query_int(request, "limit", 100)))


@routes.get("/v1/requests/{id}")
async def get_request(request: web.Request) -> web.Response:
    return reply(request, await request.app[APPROVALS].get(_id(request), identity(request)))


@routes.post("/v1/requests/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    reason = parse_vote(await body(request))
    return reply(request, await request.app[APPROVALS].approve(_id(request), identity(request), reason))


@routes.post("/v1/requests/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    reason = parse_vote(await body(request))
    return reply(request, await request.app[APPROVALS].reject(_id(request), identity(request), reason))
