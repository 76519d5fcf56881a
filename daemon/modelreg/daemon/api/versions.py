"""Versions: list, get, resolve, download files."""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.names import Ref

from ..keys import BLOBS, LIFECYCLE, POOL, STORE
from ..services import catalog
from .blobs import blob_response
from .http import query_bool, query_int, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> Ref:
    return catalog.ref_of(request.match_info["name"], request.match_info["selector"])


@routes.get("/v1/models/{name}/versions")
async def list_versions(request: web.Request) -> web.Response:
    q = request.query
    return reply(request, await catalog.page_versions(
        request.app[STORE], request.match_info["name"], stage=q.get("stage"), status=q.get("status"),
        tags=q.getall("tag", []), metric_filters=q.getall("metric", []), order=q.get("order", "-number"),
        limit=query_int(request, "limit", catalog.DEFAULT_PAGE), cursor=q.get("cursor")))


@routes.get("/v1/models/{name}/versions/{selector}")
async def get_version(request: web.Request) -> web.Response:
    return reply(request, await catalog.get_version(request.app[STORE], _ref(request)))


@routes.get("/v1/resolve/{ref}")
async def resolve(request: web.Request) -> web.Response:
    """The compact answer CI/CD wants: which version, which digest, which files."""
    return reply(request, await catalog.resolve(request.app[STORE], request.match_info["ref"],
                                                want_path=query_bool(request, "path"),
                                                materialise=request.app[LIFECYCLE].materialise))


@routes.get("/v1/models/{name}/versions/{selector}/files/{path:.+}")
async def download(request: web.Request) -> web.StreamResponse:
    """The file's bytes, or with S3 a 307 to a presigned URL (the digest rides on both answers)."""
    sha, source = await catalog.download(request.app[STORE], request.app[BLOBS], request.app[POOL], _ref(request),
                                         request.match_info["path"])
    return blob_response(source, {"X-Content-SHA256": sha})
