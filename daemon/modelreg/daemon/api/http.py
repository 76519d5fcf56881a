"""Request/response helpers shared by the route modules: codec negotiation, query params."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelreg.shared.codec import JSON, MSGPACK, decode, encode, wants_json
from modelreg.shared.errors import InvalidInput


def reply(request: web.Request, data: Any, status: int = 200) -> web.Response:
    as_json = wants_json(request.headers.get("Accept"))
    return web.Response(body=encode(data, as_json), status=status,
                        content_type=JSON if as_json else MSGPACK)


async def body(request: web.Request) -> Any:
    """The decoded request body; aiohttp enforces client_max_size on read()."""
    raw = await request.read()
    return decode(raw, request.content_type)


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


def actor(request: web.Request) -> str:
    """Who asked: the client says (user@host); the token proves only that it may."""
    value = request.headers.get("X-Modelreg-Actor", "api")
    return value[:200] if value.isprintable() else "api"
