"""mlflow-artifacts routes: upload, list, download, delete and multipart (issue 10).

Thin: each handler hands the path (and, for uploads, the body as a stream) to the artifacts
service (services/mlflow/artifacts.py) and replies. The part URLs of a multipart upload are
open (no token: the client sends none to them); the upload id in them is the capability.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from aiohttp import web

from ...keys import MLFLOW_ARTIFACTS
from ..blobs import blob_response
from ...services.mlflow.artifacts import PART_ROUTE
from .errors import INVALID_PARAMETER_VALUE, MlflowError
from .http import params, reply

routes = web.RouteTableDef()
ROOT = "/api/2.0/mlflow-artifacts"
_READ = 1024 * 1024


def _artifacts(request: web.Request):  # noqa: ANN202 - the Artifacts service
    return request.app[MLFLOW_ARTIFACTS]


def _path(request: web.Request, route: str) -> str:
    """The artifact path after ``route``, decoded from the raw URL: aiohttp keeps a sequence that
    is not UTF-8 (``%ff``) as literal text, which would be a second spelling of ``%25ff``."""
    try:
        full = unquote_to_bytes(request.raw_path.split("?", 1)[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise MlflowError(INVALID_PARAMETER_VALUE, "Invalid path: it is not valid UTF-8") from None
    if not full.startswith(route):  # the route matched another spelling of its prefix
        raise MlflowError(INVALID_PARAMETER_VALUE, f"Invalid path {full[:200]!r}")
    return full[len(route):]


@routes.put(f"{ROOT}/artifacts/{{path:.+}}")
async def upload(request: web.Request) -> web.Response:
    await _artifacts(request).upload(_path(request, f"{ROOT}/artifacts/"), request.content.iter_chunked(_READ),
                                     request.content_length)
    return reply({})


@routes.get(f"{ROOT}/artifacts")
async def list_artifacts(request: web.Request) -> web.Response:
    return reply(await _artifacts(request).list(request.query.get("path")))


@routes.get(f"{ROOT}/artifacts/{{path:.+}}")
async def download(request: web.Request) -> web.StreamResponse:
    return blob_response(await _artifacts(request).download(_path(request, f"{ROOT}/artifacts/")), {})


@routes.delete(f"{ROOT}/artifacts/{{path:.+}}")
async def delete(request: web.Request) -> web.Response:
    return reply(await _artifacts(request).delete(_path(request, f"{ROOT}/artifacts/")))


@routes.post(f"{ROOT}/mpu/create/{{path:.+}}")
async def create_multipart(request: web.Request) -> web.Response:
    base = f"{request.scheme}://{request.host}"
    path = _path(request, f"{ROOT}/mpu/create/")
    return reply(await _artifacts(request).create_multipart(path, await params(request), base))


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
    path = _path(request, f"{ROOT}/mpu/complete/")
    return reply(await _artifacts(request).complete_multipart(path, await params(request)))


@routes.post(f"{ROOT}/mpu/abort/{{path:.+}}")
async def abort_multipart(request: web.Request) -> web.Response:
    path = _path(request, f"{ROOT}/mpu/abort/")
    return reply(await _artifacts(request).abort_multipart(path, await params(request)))
