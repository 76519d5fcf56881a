"""Request and reply helpers for the MLflow routes: JSON in, JSON out, MLflow's conventions.

MLflow's client sends GET parameters as a query string (a list as the key repeated) and
POST/PATCH/DELETE parameters as a JSON body; it always reads JSON back.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..http import identity
from .errors import INVALID_PARAMETER_VALUE, MlflowError

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


async def params(request: web.Request) -> dict[str, Any]:
    """The request's parameters: the query string for GET, else the JSON body (empty: {}).

    A repeated query key becomes a list; a single one stays a string (callers that expect a
    list use ``as_list``).
    """
    if request.method in ("GET", "HEAD"):
        out: dict[str, Any] = {}
        for key in request.query.keys():
            if key in out:
                continue
            values = request.query.getall(key)
            out[key] = values if len(values) > 1 else values[0]
        return out
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        value = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise MlflowError(INVALID_PARAMETER_VALUE, f"Malformed JSON request body: {exc}") from None
    except RecursionError:  # msgspec's own limit on nesting ("[" * 10000)
        raise MlflowError(INVALID_PARAMETER_VALUE, "The request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise MlflowError(INVALID_PARAMETER_VALUE, "The request body must be a JSON object")
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ms(seconds: float | None) -> int | None:
    """Our timestamps (Unix seconds) as MLflow's (integer milliseconds)."""
    return None if seconds is None else int(round(seconds * 1000))


def actor(request: web.Request) -> str:
    """Who acted, for the audit log: ``mlflow:`` and the token's identity (``mlflow:ci``). The stock
    client names no user, so the home's token is ``mlflow:home-token`` unless its client says who."""
    who = identity(request)
    named = who.token_id is not None or "X-Modelreg-Actor" in request.headers
    return f"mlflow:{who.actor if named else 'home-token'}"
