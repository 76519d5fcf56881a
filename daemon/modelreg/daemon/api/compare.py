"""GET /v1/compare: versions side by side."""

from __future__ import annotations

from aiohttp import web

from ..keys import STORE
from ..services import compare as comparing
from .http import reply

routes = web.RouteTableDef()


@routes.get("/v1/compare")
async def compare(request: web.Request) -> web.Response:
    return reply(request, await comparing.compare(request.app[STORE], request.query.getall("ref", [])))
