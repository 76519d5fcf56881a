"""Lineage queries: upstream and downstream of a version, users of a dataset."""

from __future__ import annotations

from aiohttp import web

from ..keys import STORE
from ..services import lineage
from .http import reply

routes = web.RouteTableDef()


@routes.get("/v1/lineage/{ref}")
async def version_lineage(request: web.Request) -> web.Response:
    return reply(request, await lineage.version_lineage(request.app[STORE], request.match_info["ref"],
                                                        request.query.get("direction", "both")))


@routes.get("/v1/datasets/{dataset}/versions")
async def dataset_versions(request: web.Request) -> web.Response:
    return reply(request, await lineage.dataset_users(request.app[STORE], request.match_info["dataset"]))
