"""Lineage queries: upstream and downstream of a version, users of a dataset."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import InvalidInput

from .. import lineage
from ..keys import DB
from .http import reply

routes = web.RouteTableDef()


@routes.get("/v1/lineage/{ref}")
async def version_lineage(request: web.Request) -> web.Response:
    direction = request.query.get("direction", "both")
    if direction not in ("up", "down", "both"):
        raise InvalidInput("direction must be up, down or both")
    db, ref = request.app[DB], request.match_info["ref"]
    out = {}
    if direction in ("up", "both"):
        out["upstream"] = await lineage.upstream_tree(db, ref)
    if direction in ("down", "both"):
        out["downstream"] = await lineage.downstream_tree(db, ref)
    return reply(request, out)


@routes.get("/v1/datasets/{dataset}/versions")
async def dataset_versions(request: web.Request) -> web.Response:
    return reply(request, await lineage.dataset_users(request.app[DB], request.match_info["dataset"]))
