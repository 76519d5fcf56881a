"""Request/response helpers shared by the route modules: codec negotiation, query params."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from modelreg.shared.codec import JSON, MSGPACK, decode, encode, wants_json
from modelreg.shared.errors import InvalidInput

from ..services.identity import Identity, home_admin

IDENTITY_KEY = "modelreg.identity"  # request[IDENTITY_KEY]: the Identity the middleware resolved


def reply(request: web.Request, data: Any, status: int = 200) -> web.Response:
    as_json = wants_json(request.headers.get("Accept"))
    return web.Response(body=encode(data, as_json), status=status,
                        content_type=JSON if as_json else MSGPACK)


async def body(request: web.Request) -> Any:
    """The decoded request body; aiohttp enforces client_max_size on read()."""
    raw = await request.read()
    value = decode(raw, request.content_type)
    if value is not None and "json" in request.content_type.lower():
        # JSON may spell lone surrogates (\ud800) that no UTF-8 string can hold; SQLite and
        # the filesystem would fail on them later with a 500.
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidInput("JSON body holds a lone surrogate escape (\\ud800-\\udfff), which is not text") from None
    return value


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
        if not -(2**63) < value < 2**63:
            raise ValueError
        return value
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} must be an integer, not {raw[:50]!r}") from None


def query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def claimed_actor(request: web.Request) -> str:
    """Who the client says it is (user@host); only the home's token may name itself this way."""
    value = request.headers.get("X-Modelreg-Actor", "api")
    return value[:200] if value.isprintable() else "api"


def identity(request: web.Request) -> Identity:
    """Who the request's token proves it is (set by the middleware; the open routes: nobody)."""
    return request.get(IDENTITY_KEY) or home_admin(claimed_actor(request))


def actor(request: web.Request) -> str:
    """What events record for this request (``Identity.actor``)."""
    return identity(request).actor
