"""One error hierarchy for daemon, client, CLI and TUI.

Each error knows its HTTP status (the daemon's error middleware uses it) and its CLI exit
code (PRODUCT.md §8: 1 error, 2 usage, 3 gate failed, 4 not found, 5 daemon unreachable; a full
disk is an error, 1).
The wire envelope is ``{"error": {"code", "message", "details"}}``; ``from_envelope`` turns
it back into the same class on the client side.
"""

from __future__ import annotations

import errno
import os
from typing import Any


class ModelregError(Exception):
    code = "error"
    status = 500
    exit_code = 1

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(ModelregError):
    code = "invalid_input"
    status = 400
    exit_code = 2


class Unauthorized(ModelregError):
    code = "unauthorized"
    status = 401


class Forbidden(ModelregError):
    """The token is valid but its scope or model glob does not cover the request (issue 12)."""

    code = "forbidden"
    status = 403
    exit_code = 6


class NotFound(ModelregError):
    code = "not_found"
    status = 404
    exit_code = 4


class Conflict(ModelregError):
    code = "conflict"
    status = 409


class PayloadTooLarge(ModelregError):
    code = "payload_too_large"
    status = 413
    exit_code = 2


class DigestMismatch(ModelregError):
    """Uploaded bytes do not hash to the sha256 announced for them (the upload is discarded)."""

    code = "digest_mismatch"
    status = 422


class GateFailed(ModelregError):
    code = "gate_failed"
    status = 422
    exit_code = 3


class Unavailable(ModelregError):
    """The daemon cannot be reached (client side) or refuses work while shutting down."""

    code = "unavailable"
    status = 503
    exit_code = 5


class IntegrityError(ModelregError):
    """Stored bytes no longer match their digest."""

    code = "integrity"
    status = 409


class InsufficientStorage(ModelregError):
    """The disk holding the registry is full: nothing of the write was kept; the same request
    succeeds once space is freed. ``details``: ``cause`` (the system's words) and ``storing``."""

    code = "insufficient_storage"
    status = 507


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(cause: str, storing: str | None = None) -> InsufficientStorage:
    """The one wording of a full disk; ``storing`` names what could not be stored, when known."""
    what = storing or "the change"
    return InsufficientStorage(
        f"the disk is full ({cause}): could not store {what}; nothing of it was kept. "
        "Free space on the registry's disk and retry",
        {"cause": cause, **({"storing": storing} if storing else {})})


def as_disk_full(exc: BaseException, storing: str) -> InsufficientStorage | None:
    """``exc`` as InsufficientStorage naming ``storing`` when a full disk caused it (ENOSPC, a
    quota, or a store's own InsufficientStorage that did not know what was being stored); else None."""
    if isinstance(exc, InsufficientStorage):
        return exc if "storing" in exc.details else disk_full(str(exc.details.get("cause", exc.message)), storing)
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return disk_full(exc.strerror or os.strerror(exc.errno), storing)
    return None


_BY_CODE = {
    cls.code: cls
    for cls in (
        ModelregError,
        InvalidInput,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        DigestMismatch,
        GateFailed,
        Unavailable,
        IntegrityError,
        InsufficientStorage,
    )
}


def from_envelope(status: int, body: Any) -> ModelregError:
    """Rebuild the error a daemon sent; tolerate bodies that are not our envelope."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        cls = _BY_CODE.get(str(err.get("code")), None)
        if cls is None:
            cls = _class_for_status(status)
        exc = cls(str(err.get("message", "")), err.get("details") or {})
        exc.code = str(err.get("code", cls.code))
        return exc
    return _class_for_status(status)(f"daemon answered HTTP {status}")


def _class_for_status(status: int) -> type[ModelregError]:
    for cls in _BY_CODE.values():
        if cls.status == status and cls is not ModelregError:
            return cls
    return InvalidInput if 400 <= status < 500 else ModelregError
