"""The one error middleware and bearer-token auth (PRODUCT.md §9, §10)."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from modelreg.shared.errors import ModelregError, Unauthorized

from ..keys import TOKEN
from .http import reply

log = logging.getLogger("modelreg.daemon")
OPEN_ROUTES = frozenset({("GET", "/v1/health"), ("HEAD", "/v1/health")})


def _envelope(request: web.Request, status: int, code: str, message: str, details: dict | None = None) -> web.Response:
    return reply(request, {"error": {"code": code, "message": message, "details": details or {}}}, status)


@web.middleware
async def errors(request: web.Request, handler):
    """Every error leaves as the same envelope with a 4xx; a 5xx means a bug, logged here."""
    try:
        return await handler(request)
    except ModelregError as exc:
        return _envelope(request, exc.status, exc.code, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status, "http_error")
        message = exc.reason if exc.status != 413 else exc.text or "request body is too large"
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        response = _envelope(request, exc.status, code, message)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _envelope(request, 500, "internal", "internal error; the daemon log has the details")


@web.middleware
async def auth(request: web.Request, handler):
    if (request.method, request.path) in OPEN_ROUTES:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[TOKEN]
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthorized("missing or wrong bearer token; local clients read it from HOME/token")
    return await handler(request)
