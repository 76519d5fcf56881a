"""The one error middleware and bearer-token auth (PRODUCT.md §9, §10)."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from modelreg.shared.errors import GateFailed, InsufficientStorage, ModelregError, Unauthorized, as_disk_full

from ..keys import TOKEN, TOKENS
from ..services.tokens import PREFIX
from ..services.identity import Identity, home_admin
from .http import IDENTITY_KEY, claimed_actor, reply
from .policy import authorize
from .mlflow import errors as mlflow_errors
from .mlflow.http import reply as mlflow_reply

log = logging.getLogger("modelreg.daemon")
OPEN_ROUTES = frozenset({("GET", "/v1/health"), ("HEAD", "/v1/health")})
# A multipart upload's part URLs: the stock client sends no token to them (they stand in for
# presigned URLs); the unguessable upload id in the path is the capability, unknown ids refused.
OPEN_PREFIXES = (("PUT", "/api/2.0/mlflow-artifacts/mpu/part/"),)


MLFLOW_PREFIX = "/api/"  # MLflow's REST API (api/mlflow/): its own error shape


def _envelope(request: web.Request, status: int, code: str, message: str, details: dict | None = None) -> web.Response:
    return reply(request, {"error": {"code": code, "message": message, "details": details or {}}}, status)


def _mlflow_http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    message = exc.text or exc.reason if exc.status == 413 else exc.reason
    if exc.status in (404, 405):
        message = f"No API endpoint {request.method} {request.path}; modelreg serves MLflow's model registry, " \
                  "mlflow-artifacts and the tracking calls log_model needs (docs/mlflow.md)"
    data, status = mlflow_errors.http_envelope(exc.status, message)
    return mlflow_reply(data, status)


@web.middleware
async def guard(request: web.Request, handler):
    """Bearer auth and the route policy (policy.py), then the handler; every error leaves as the
    same envelope with a 4xx.

    One middleware, not two: each layer is a coroutine per request, and this one runs on every
    request the daemon answers. A 5xx means a bug, logged here, or a full disk (507
    insufficient_storage, naming what the request was storing).
    """
    try:
        if (request.method, request.path) not in OPEN_ROUTES and not _open_prefix(request):
            await authorize(request, await _identify(request))
        return await handler(request)
    except ModelregError as exc:
        return _error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if request.path.startswith(MLFLOW_PREFIX):
            return _mlflow_http_error(request, exc)
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
    except OSError as exc:  # a full disk is the one the client can act on (ENOSPC from a blob, a link…)
        full = as_disk_full(exc, _storing(request))
        return _internal(request) if full is None else _error(request, full)
    except Exception:
        return _internal(request)


def _error(request: web.Request, exc: ModelregError) -> web.Response:
    if isinstance(exc, GateFailed):  # a policy decision an operator wants to see, not an error of the daemon
        log.info("refused by gates: %s %s: %s", request.method, request.path, exc.message)
    if isinstance(exc, InsufficientStorage):
        exc = as_disk_full(exc, _storing(request)) or exc  # a store cannot know what the request was storing
        log.warning("%s %s: %s", request.method, request.path, exc.message)
    if request.path.startswith(MLFLOW_PREFIX):
        return mlflow_reply(*mlflow_errors.envelope(exc))
    return _envelope(request, exc.status, exc.code, exc.message, exc.details)


def _internal(request: web.Request) -> web.Response:
    """A bug: the traceback goes to the log (called inside the ``except`` that caught it)."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    if request.path.startswith(MLFLOW_PREFIX):
        return mlflow_reply({"error_code": "INTERNAL_ERROR", "message": "internal error; the daemon log has the details"}, 500)
    return _envelope(request, 500, "internal", "internal error; the daemon log has the details")


def _storing(request: web.Request) -> str:
    """What a request stores, in a person's words, for the full-disk message."""
    path, name, selector = request.path, request.match_info.get("name"), request.match_info.get("selector")
    if path.startswith("/v1/blobs"):
        return "the uploaded file"
    if path.startswith("/api/2.0/mlflow-artifacts/"):
        return "the uploaded MLflow artifact"
    if name and request.method == "POST" and path.rstrip("/").endswith(f"/models/{name}/versions"):
        return f"a new version of {name}"
    if name and selector and path.endswith("/metrics"):
        return f"the metrics of {name}@{selector}"
    return f"the result of {request.method} {path}"


def _open_prefix(request: web.Request) -> bool:
    return any(request.method == method and request.path.startswith(prefix) for method, prefix in OPEN_PREFIXES)


async def _identify(request: web.Request) -> Identity:
    """The bearer token → the request's Identity: the home's token is the local admin, a named
    token (``mr_…``) is its name and scope; anything else, or a revoked or expired token, is 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token; local clients read it from HOME/token, others set MODELREG_TOKEN")
    if hmac.compare_digest(token.encode(), request.app[TOKEN].encode()):
        identity = request[IDENTITY_KEY] = home_admin(claimed_actor(request))
        return identity
    identity, why = await request.app[TOKENS].identify(token) if token.startswith(PREFIX) else (None, "")
    if identity is None:
        raise Unauthorized(why or "wrong bearer token; local clients read the home's from HOME/token")
    request[IDENTITY_KEY] = identity
    return identity
