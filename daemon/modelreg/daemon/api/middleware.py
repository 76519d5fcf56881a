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
async def guard(request: web.Request, handler):
    """Bearer auth, then the handler; every error leaves as the same envelope with a 4xx.

    One middleware, not two: each layer is a coroutine per request, and this one runs on every
    request the daemon answers. A 5xx means a bug, logged here.
    """
    try:
        if (request.method, request.path) not in OPEN_ROUTES:
            _check_token(request)
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


def _check_token(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[TOKEN]
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthorized("missing or wrong bearer token; local clients read it from HOME/token")
