"""GET /v1/search: versions across every model."""

from __future__ import annotations

from aiohttp import web

from ..keys import STORE
from ..services import search as searching
from .http import query_int, reply

routes = web.RouteTableDef()


@routes.get("/v1/search")
async def search(request: web.Request) -> web.Response:
    q = request.query
    query = searching.query(
        name=q.get("name") or None, tags=q.getall("tag", []), metrics=q.getall("metric", []),
        facts=q.getall("fact", []), datasets=q.getall("dataset", []), stage=q.get("stage") or None,
        status=q.get("status") or None, order=q.get("order") or "-created",
        limit=query_int(request, "limit", searching.DEFAULT_PAGE), cursor=q.get("cursor") or None)
    return reply(request, await searching.search(request.app[STORE], query))
