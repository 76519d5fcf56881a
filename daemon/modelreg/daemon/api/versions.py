"""Versions: list, get, resolve, download files."""

from __future__ import annotations

import asyncio

from aiohttp import web

from modelreg.shared.errors import Conflict, IntegrityError, NotFound
from modelreg.shared.names import Ref, parse_ref, validate_relpath

from .. import catalog
from ..keys import BLOBS, DB, LIFECYCLE
from .http import query_bool, query_int, reply

routes = web.RouteTableDef()


def _ref(request: web.Request) -> Ref:
    return parse_ref(f"{request.match_info['name']}@{request.match_info['selector']}")


@routes.get("/v1/models/{name}/versions")
async def list_versions(request: web.Request) -> web.Response:
    q = request.query
    page = await catalog.list_versions(
        request.app[DB], request.match_info["name"], stage=q.get("stage"), status=q.get("status"),
        tags=q.getall("tag", []), metric_filters=q.getall("metric", []), order=q.get("order", "-number"),
        limit=query_int(request, "limit", catalog.DEFAULT_PAGE), cursor=q.get("cursor"))
    return reply(request, page)


@routes.get("/v1/models/{name}/versions/{selector}")
async def get_version(request: web.Request) -> web.Response:
    db = request.app[DB]
    row = await catalog.resolve(db, _ref(request))
    return reply(request, await catalog.version_detail(db, row))


@routes.get("/v1/resolve/{ref}")
async def resolve(request: web.Request) -> web.Response:
    """The compact answer CI/CD wants: which version, which digest, which files."""
    db = request.app[DB]
    row = await catalog.resolve(db, request.match_info["ref"])
    files = await db.all("SELECT path, sha256, size FROM manifest WHERE version_id = ? ORDER BY path", (row["id"],))
    out = {"ref": f"{row['model_name']}@{row['number']}", "model": row["model_name"], "version": row["number"],
           "stage": row["stage"], "status": row["status"], "content_digest": row["content_digest"],
           "files": [dict(f) for f in files]}
    if query_bool(request, "path"):
        if row["status"] != "ready" or row["purged_at"]:
            raise Conflict(f"{out['ref']} has no files to point at (status {row['status']}"
                           + (", purged by gc)" if row["purged_at"] else ")"))
        # A read-only folder of the version's files, hardlinked from the store (no copy).
        out["path"] = str(await request.app[LIFECYCLE].materialise(row["id"], row["model_name"], row["number"]))
    return reply(request, out)


@routes.get("/v1/models/{name}/versions/{selector}/files/{path:.+}")
async def download(request: web.Request) -> web.StreamResponse:
    db = request.app[DB]
    row = await catalog.resolve(db, _ref(request))
    path = validate_relpath(request.match_info["path"])
    entry = await db.one("SELECT sha256, size FROM manifest WHERE version_id = ? AND path = ?", (row["id"], path))
    if entry is None:
        raise NotFound(f"{row['model_name']}@{row['number']} has no file {path!r}")
    if row["purged_at"]:
        raise Conflict(f"{row['model_name']}@{row['number']}'s files were removed by gc after its retention period")
    blob = request.app[BLOBS].path(entry["sha256"])
    if not await asyncio.to_thread(blob.is_file):
        raise IntegrityError(f"the stored bytes of {path!r} are missing; run `modelreg verify`")
    return web.FileResponse(blob, headers={"X-Content-SHA256": entry["sha256"],
                                           "Content-Type": "application/octet-stream"})
