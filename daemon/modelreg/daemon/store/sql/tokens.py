"""Named, scoped tokens (issue 12). Only each secret's sha256 is stored."""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import Conflict, NotFound

from ..records import TokenRecord
from . import events
from .tx import Sql, Engine, WriteTx


def token_record(row: Any) -> TokenRecord:
    return TokenRecord(id=row["id"], name=row["name"], scope=row["scope"], models=row["models"],
                       created_at=row["created_at"], created_by=row["created_by"], expires_at=row["expires_at"],
                       revoked_at=row["revoked_at"], revoked_by=row["revoked_by"], last_used_at=row["last_used_at"])


def _view(rec: TokenRecord) -> dict[str, Any]:
    return {"name": rec.name, "scope": rec.scope, "models": rec.models, "expires_at": rec.expires_at}


def create_token(tx: WriteTx, name: str, secret_hash: str, scope: str, models: str | None,
                 expires_at: float | None, actor: str) -> TokenRecord:
    if tx.one("SELECT 1 FROM tokens WHERE name = ?", (name,)) is not None:
        raise Conflict(f"a token named {name!r} exists (names are never reused: the audit log names them)")
    row = tx.one("INSERT INTO tokens (name, secret_hash, scope, models, created_at, created_by, expires_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *", (name, secret_hash, scope, models, tx.now, actor, expires_at))
    rec = token_record(row)
    events.append(tx, "token.created", actor, data=_view(rec))
    return rec


def revoke_token(tx: WriteTx, name: str, actor: str) -> TokenRecord:
    row = tx.one("SELECT * FROM tokens WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no token named {name!r}; modelreg token list shows them")
    if row["revoked_at"] is not None:
        return token_record(row)
    row = tx.one("UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? RETURNING *", (tx.now, actor, row["id"]))
    rec = token_record(row)
    events.append(tx, "token.revoked", actor, data=_view(rec))
    return rec


def list_tokens(q: Sql) -> list[TokenRecord]:
    return [token_record(r) for r in q.all("SELECT * FROM tokens ORDER BY id")]


def by_hash(q: Sql, secret_hash: str) -> TokenRecord | None:
    row = q.one("SELECT * FROM tokens WHERE secret_hash = ?", (secret_hash,))
    return token_record(row) if row is not None else None


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def create(self, name: str, secret_hash: str, scope: str, models: str | None,
                     expires_at: float | None, actor: str) -> TokenRecord:
        return await self.engine.write(lambda tx: create_token(tx, name, secret_hash, scope, models, expires_at, actor))

    async def revoke(self, name: str, actor: str) -> TokenRecord:
        return await self.engine.write(lambda tx: revoke_token(tx, name, actor))

    async def list(self) -> list[TokenRecord]:
        return await self.engine.read(list_tokens)

    async def by_hash(self, secret_hash: str) -> TokenRecord | None:
        return await self.engine.read(lambda q: by_hash(q, secret_hash))
