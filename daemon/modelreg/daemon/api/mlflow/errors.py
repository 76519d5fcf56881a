"""MLflow's error shape, ``{"error_code", "message"}``, and the one mapping from ours to it.

Every route under ``/api/`` answers errors this way (``middleware.guard`` asks here), so the
stock client raises an ``MlflowException`` with the right ``error_code``. No code maps to a
status the client retries (429, 5xx) unless retrying can help: a gate refusal or bad input
must fail at once, not after the client's five retries.
"""

from __future__ import annotations

from modelreg.shared.errors import ModelregError

# MLflow's codes, as its server and client spell them.
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
BAD_REQUEST = "BAD_REQUEST"
INVALID_STATE = "INVALID_STATE"

# Our error codes (modelreg.shared.errors) → MLflow code and HTTP status.
_FROM_OURS: dict[str, tuple[str, int]] = {
    "invalid_input": (INVALID_PARAMETER_VALUE, 400),
    "not_found": (RESOURCE_DOES_NOT_EXIST, 404),
    "conflict": ("RESOURCE_CONFLICT", 409),
    "gate_failed": (PERMISSION_DENIED, 403),  # the registry's rules do not permit the move
    "unauthorized": (UNAUTHENTICATED, 401),
    "forbidden": (PERMISSION_DENIED, 403),  # the token's scope or model glob does not cover it
    "payload_too_large": (INVALID_PARAMETER_VALUE, 413),
    "unavailable": ("TEMPORARILY_UNAVAILABLE", 503),  # shutting down: a retry elsewhere helps
    "integrity": ("DATA_LOSS", 409),
    "insufficient_storage": ("RESOURCE_EXHAUSTED", 507),  # a full disk: not a status the client retries
}


class MlflowError(ModelregError):
    """An error with MLflow's own code, for the cases where MLflow's server names one exactly
    (``RESOURCE_ALREADY_EXISTS`` for a duplicate name, ``INVALID_PARAMETER_VALUE`` …)."""

    def __init__(self, mlflow_code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.mlflow_code = mlflow_code
        self.status = status
        self.code = "invalid_input" if status == 400 else "not_found" if status == 404 else "conflict"


def envelope(exc: ModelregError) -> tuple[dict[str, str], int]:
    """The MLflow body and status for one of our errors."""
    if isinstance(exc, MlflowError):
        return {"error_code": exc.mlflow_code, "message": exc.message}, exc.status
    code, status = _FROM_OURS.get(exc.code, ("INTERNAL_ERROR", 500))
    return {"error_code": code, "message": exc.message}, status


def http_envelope(status: int, message: str) -> tuple[dict[str, str], int]:
    """An error aiohttp raised itself (no such route, wrong method, body too large)."""
    if status in (404, 405):
        return {"error_code": ENDPOINT_NOT_FOUND, "message": message}, 404
    if status == 413:
        return {"error_code": INVALID_PARAMETER_VALUE, "message": message}, 413
    if status >= 500:
        return {"error_code": "INTERNAL_ERROR", "message": message}, status
    return {"error_code": BAD_REQUEST, "message": message}, status
