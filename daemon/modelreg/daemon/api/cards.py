"""A version's model card: the text of its README.md (PRODUCT.md §7), for the TUI and `modelreg card`."""

from __future__ import annotations

from aiohttp import web

from ..keys import BLOBS, POOL, STORE
from ..services import catalog
from .http import reply

routes = web.RouteTableDef()


@routes.get("/v1/models/{name}/versions/{selector}/card")
async def get_card(request: web.Request) -> web.Response:
    ref = catalog.ref_of(request.match_info["name"], request.match_info["selector"])
    return reply(request, await catalog.card(request.app[STORE], request.app[BLOBS], request.app[POOL], ref))
