"""Named, scoped tokens (issue 12, PRODUCT.md §10): create, list, revoke, and identify a request.

A token is ``mr_`` + 43 random URL-safe characters (256 bits), shown once at creation; the
store keeps its sha256. Identifying a request hashes the presented secret and looks the hash
up, so no comparison ever runs over the secret itself (the home's token is compared with
``hmac.compare_digest`` in the middleware). Lookups are cached for a few seconds: a request
must not cost a database read, and a revocation reaches every request within ``CACHE_TTL``
(at once in the daemon that revoked it).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from modelreg.shared.config import NAMED_TOKEN_PREFIX
from modelreg.shared.errors import InvalidInput
from modelreg.shared.timefmt import iso, parse_duration

from ..store import Store
from ..store.records import TokenRecord
from .identity import HOME_ADMIN, SCOPES, Identity

PREFIX = NAMED_TOKEN_PREFIX
CACHE_TTL = 5.0
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # the same names gate rules accept (`by ci`)
RESERVED = frozenset({HOME_ADMIN, "daemon", "api"})
MODEL_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]-]{1,200}$")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_view(rec: TokenRecord, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    state = ("revoked" if rec.revoked_at is not None else
             "expired" if rec.expires_at is not None and rec.expires_at <= now else "active")
    return {"name": rec.name, "scope": rec.scope, "models": rec.models, "state": state,
            "created_at": iso(rec.created_at), "created_by": rec.created_by, "expires_at": iso(rec.expires_at),
            "revoked_at": iso(rec.revoked_at), "revoked_by": rec.revoked_by}


def validate_token_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(f"a token name is 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter "
                           f"or digit (it is the identity gate rules name: 'by ci'), not {str(name)[:80]!r}")
    if name in RESERVED:
        raise InvalidInput(f"{name!r} is reserved ({HOME_ADMIN!r} is the home's own token)")
    return name


class TokenService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, TokenRecord | None]] = {}

    async def create(self, name: object, scope: object, models: object, expires: object, actor: str) -> dict[str, Any]:
        name = validate_token_name(name)
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}, not {str(scope)[:40]!r}")
        if models is not None and (not isinstance(models, str) or not MODEL_GLOB.match(models)):
            raise InvalidInput("models is a glob of model names such as 'fraud*' (letters, digits, . _ - * ? [ ])")
        expires_at = None
        if expires is not None:
            if not isinstance(expires, str):
                raise InvalidInput("expires is a duration such as 30d, 12h or 90m")
            expires_at = time.time() + parse_duration(expires)
        secret = PREFIX + secrets.token_urlsafe(32)
        rec = await self.store.tokens.create(name, secret_hash(secret), scope, models, expires_at, actor)
        return {**token_view(rec), "token": secret}

    async def list(self) -> dict[str, Any]:
        now = time.time()
        return {"items": [token_view(r, now) for r in await self.store.tokens.list()]}

    async def revoke(self, name: object, actor: str) -> dict[str, Any]:
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidInput(f"no token can be named {str(name)[:80]!r}")
        rec = await self.store.tokens.revoke(name, actor)
        self._cache.clear()  # this daemon stops honouring it now, not in CACHE_TTL
        return token_view(rec)

    async def identify(self, secret: str) -> tuple[Identity | None, str]:
        """The identity a named token proves, or (None, why not) for unknown, revoked, expired."""
        digest = secret_hash(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or now - cached[0] > CACHE_TTL:
            if len(self._cache) > 10000:
                self._cache.clear()
            cached = (now, await self.store.tokens.by_hash(digest))
            self._cache[digest] = cached
        rec = cached[1]
        if rec is None:
            return None, "unknown bearer token; local clients read the home's from HOME/token"
        if rec.revoked_at is not None:
            return None, f"token {rec.name!r} was revoked at {iso(rec.revoked_at)}"
        if rec.expires_at is not None and rec.expires_at <= time.time():
            return None, f"token {rec.name!r} expired at {iso(rec.expires_at)}"
        return Identity(rec.name, rec.scope, rec.models, rec.id), ""
