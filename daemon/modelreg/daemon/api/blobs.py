"""POST /v1/blobs: stream a file's bytes in (for clients not on the daemon's machine)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from modelreg.shared.errors import InvalidInput, PayloadTooLarge

from ..keys import BLOBS, CONFIG, POOL
from .http import reply

routes = web.RouteTableDef()
_BATCH = 4 * 1024 * 1024


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
        pending = bytearray()
        async for chunk in request.content.iter_chunked(1024 * 1024):
            pending += chunk
            if writer.size + len(pending) > limit:
                raise PayloadTooLarge(f"upload is over the limit of {limit} bytes")
            if len(pending) >= _BATCH:
                # Hashing and writing happen off the event loop, a few MB at a time.
                await loop.run_in_executor(pool, writer.write, bytes(pending))
                pending.clear()
        if pending:
            await loop.run_in_executor(pool, writer.write, bytes(pending))
        if request.content_length is not None and writer.size != request.content_length:
            raise InvalidInput(f"upload ended after {writer.size} of {request.content_length} bytes")
        if expected and expected != writer.digest:
            raise InvalidInput(f"uploaded bytes hash to {writer.digest}, not the announced {expected}")
        stored = await loop.run_in_executor(pool, writer.commit)
    except BaseException:
        await loop.run_in_executor(pool, writer.abort)
        raise
    return reply(request, {"sha256": stored.sha256, "size": stored.size, "deduplicated": stored.method == "dedup"},
                 status=201)
