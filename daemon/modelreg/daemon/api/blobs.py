"""Blob uploads, for clients not on the daemon's machine.

``POST /v1/blobs`` streams a whole file in one request. ``/v1/blobs/uploads`` is the resumable
protocol for large files (``services/uploads.py``): create a session, ``PATCH`` the bytes in
parts at the ``Upload-Offset`` the daemon made durable, ``HEAD`` the session after a dropped
connection to learn where to go on from. ``blob_response`` is how every download route answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from modelreg.shared.errors import InvalidInput, PayloadTooLarge

from ..keys import BLOBS, CONFIG, POOL, UPLOADS
from ..artifacts.blobs import batched
from .http import body, reply

routes = web.RouteTableDef()
UPLOADS_PATH = "/v1/blobs/uploads"


@routes.post("/v1/blobs")
async def upload(request: web.Request) -> web.Response:
    limit = request.app[CONFIG].max_upload
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"upload of {request.content_length} bytes is over the limit of {limit}")
    expected = request.headers.get("X-Content-SHA256")
    loop = asyncio.get_running_loop()
    pool = request.app[POOL]
    writer = await loop.run_in_executor(pool, request.app[BLOBS].open_writer)
    try:
        async for piece in batched(request.content.iter_chunked(1024 * 1024)):
            if writer.size + len(piece) > limit:
                raise PayloadTooLarge(f"upload is over the limit of {limit} bytes")
            # Hashing and writing happen off the event loop, a few MB at a time.
            await loop.run_in_executor(pool, writer.write, piece)
        if request.content_length is not None and writer.size != request.content_length:
            raise InvalidInput(f"upload ended after {writer.size} of {request.content_length} bytes")
        if expected and expected != writer.digest:
            raise InvalidInput(f"uploaded bytes hash to {writer.digest}, not the announced {expected}")
        stored = await loop.run_in_executor(pool, writer.commit)
    except BaseException as exc:
        await loop.run_in_executor(pool, writer.abort)
        if isinstance(exc, ConnectionError):
            return _gone()
        raise
    return reply(request, {"sha256": stored.sha256, "size": stored.size, "deduplicated": stored.method == "dedup"},
                 status=201)


@routes.post(UPLOADS_PATH)
async def create_upload(request: web.Request) -> web.Response:
    session = await request.app[UPLOADS].create(await body(request))
    response = _session_reply(request, session, 201)
    response.headers["Location"] = f"{UPLOADS_PATH}/{session['id']}"
    return response


@routes.get(UPLOADS_PATH + "/{id}")
async def upload_status(request: web.Request) -> web.Response:
    """GET and HEAD: the durable offset (also as the ``Upload-Offset`` header)."""
    return _session_reply(request, request.app[UPLOADS].describe(request.match_info["id"]))


@routes.patch(UPLOADS_PATH + "/{id}")
async def append_upload(request: web.Request) -> web.Response:
    offset = _offset_header(request)
    try:
        session = await request.app[UPLOADS].append(request.match_info["id"], offset,
                                                     request.content.iter_chunked(1024 * 1024), request.content_length)
    except ConnectionError:
        return _gone()  # what arrived is kept; the client asks for the offset when it is back
    return _session_reply(request, session)


@routes.delete(UPLOADS_PATH + "/{id}")
async def abort_upload(request: web.Request) -> web.Response:
    await request.app[UPLOADS].abort(request.match_info["id"])
    return web.Response(status=204)


def blob_response(source: Path | str, headers: dict[str, str]) -> web.StreamResponse:
    """A stored blob's bytes from its local file, or (``source`` a presigned S3 URL) a 307 to it:
    the bytes then go from S3 to the client, not through the daemon. Clients that follow the
    redirect must not send their token along (aiohttp, requests and curl drop it across hosts)."""
    if isinstance(source, str):
        return web.Response(status=307, headers={**headers, "Location": source, "Cache-Control": "no-store"})
    return web.FileResponse(source, headers={"Content-Type": "application/octet-stream", **headers})


def _gone() -> web.Response:
    """The client dropped the connection mid-body: an expected event, not an error to log;
    this answer is never sent (aiohttp sees the closed transport and lets it be)."""
    return web.Response(status=400, reason="Connection Lost")


def _offset_header(request: web.Request) -> int:
    raw = request.headers.get("Upload-Offset")
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise InvalidInput("PATCH needs an Upload-Offset header: the byte offset this body starts at, "
                           f"as the session reports it (got {str(raw)[:30]!r})", {"field": "Upload-Offset"})
    return int(raw)


def _session_reply(request: web.Request, session: dict, status: int = 200) -> web.Response:
    response = reply(request, session, status)
    response.headers["Upload-Offset"] = str(session["offset"])
    response.headers["Upload-Length"] = str(session["size"])
    response.headers["Cache-Control"] = "no-store"
    return response
