"""A version's model card: the text of its README.md (PRODUCT.md §7), for the TUI and `modelreg card`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from modelreg.shared.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.shared.names import parse_ref

from .. import catalog
from ..keys import BLOBS, DB
from .http import reply

routes = web.RouteTableDef()

CARD_NAMES = ("readme.md",)  # matched case-insensitively, at the version's root
MAX_CARD_BYTES = 1_000_000  # a card is prose; a larger README is not shown inline


@routes.get("/v1/models/{name}/versions/{selector}/card")
async def get_card(request: web.Request) -> web.Response:
    db = request.app[DB]
    row = await catalog.resolve(db, parse_ref(f"{request.match_info['name']}@{request.match_info['selector']}"))
    ref = f"{row['model_name']}@{row['number']}"
    files = await db.all("SELECT path, sha256, size FROM manifest WHERE version_id = ? ORDER BY path", (row["id"],))
    entry = next((f for f in files if f["path"].lower() in CARD_NAMES), None)
    if entry is None:
        raise NotFound(f"{ref} has no model card (no README.md among its files)", {"ref": ref})
    if row["purged_at"]:
        raise Conflict(f"{ref}'s files were removed by gc after its retention period")
    if entry["size"] > MAX_CARD_BYTES:
        raise InvalidInput(f"{ref}'s {entry['path']} is {entry['size']} bytes, more than a card shown inline "
                           f"({MAX_CARD_BYTES}); export the version to read it")
    try:
        raw = await asyncio.to_thread(request.app[BLOBS].path(entry["sha256"]).read_bytes)
    except FileNotFoundError:
        raise IntegrityError(f"the stored bytes of {entry['path']!r} are missing; run `modelreg verify`") from None
    return reply(request, {"ref": ref, "path": entry["path"], "text": raw.decode("utf-8", errors="replace")})
