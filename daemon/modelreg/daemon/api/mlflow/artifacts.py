"""mlflow-artifacts routes: upload, list, download, delete and multipart (issue 10).

Thin: each handler hands the path (and, for uploads, the body as a stream) to the artifacts
service (services/mlflow/artifacts.py) and replies. The part URLs of a multipart upload are
open (no token: the client sends none to them); the upload id in them is the capability.
"""

from __future__ import annotations

from aiohttp import web

from ...keys import MLFLOW_ARTIFACTS
from ...services.mlflow.artifacts import PART_ROUTE
from .http import params, reply

routes = web.RouteTableDef()
ROOT = "/api/2.0/mlflow-artifacts"
_READ = 1024 * 1024


def _artifacts(request: web.Request):  # noqa: ANN202 - the Artifacts service
    return request.app[MLFLOW_ARTIFACTS]


@routes.put(f"{ROOT}/artifacts/{{path:.+}}")
async def upload(request: web.Request) -> web.Response:
    await _artifacts(request).upload(request.match_info["path"], request.content.iter_chunked(_READ),
                                     request.content_length)
    return reply({})


@routes.get(f"{ROOT}/artifacts")
async def list_artifacts(request: web.Request) -> web.Response:
    return reply(await _artifacts(request).list(request.query.get("path")))


@routes.get(f"{ROOT}/artifacts/{{path:.+}}")
async def download(request: web.Request) -> web.StreamResponse:
    blob, size = await _artifacts(request).download(request.match_info["path"])
    return web.FileResponse(blob, headers={"Content-Type": "application/octet-stream",
                                           "Content-Length": str(size)})


@routes.delete(f"{ROOT}/artifacts/{{path:.+}}")
async def delete(request: web.Request) -> web.Response:
    return reply(await _artifacts(request).delete(request.match_info["path"]))


@routes.post(f"{ROOT}/mpu/create/{{path:.+}}")
async def create_multipart(request: web.Request) -> web.Response:
    base = f"{request.scheme}://{request.host}"
    return reply(await _artifacts(request).create_multipart(request.match_info["path"], await params(request), base))


@routes.put(f"{PART_ROUTE}{{upload_id}}/{{number}}")
async def upload_part(request: web.Request) -> web.Response:
    info = request.match_info
    etag = await _artifacts(request).put_part(info["upload_id"], info["number"], request.content.iter_chunked(_READ),
                                              request.content_length)
    response = reply({})
    response.headers["ETag"] = etag
    return response


@routes.post(f"{ROOT}/mpu/complete/{{path:.+}}")
async def complete_multipart(request: web.Request) -> web.Response:
    return reply(await _artifacts(request).complete_multipart(request.match_info["path"], await params(request)))


@routes.post(f"{ROOT}/mpu/abort/{{path:.+}}")
async def abort_multipart(request: web.Request) -> web.Response:
    return reply(await _artifacts(request).abort_multipart(request.match_info["path"], await params(request)))
