"""Version numbers, PostgreSQL side: allocated in the writing transaction, never reused.

The seed of the versions aggregate (the rest is ported next). ``UPDATE … RETURNING`` on the
model's row takes its row lock: a concurrent allocation for the same model waits for this
transaction to end and, under READ COMMITTED, then increments the committed counter, so
concurrent registrations across daemons get consecutive numbers, and a rolled-back one gives
its number back to nobody but the counter (which it never advanced).
"""

from __future__ import annotations

from modelreg.shared.errors import NotFound

from .engine import PgTx


async def ensure_model(tx: PgTx, model: str) -> None:
    """Create the model on first use (a concurrent creator wins; this one then sees its row)."""
    await tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES ($1, $2, $2) "
                     "ON CONFLICT (lower(name)) DO NOTHING", (model, tx.now))


async def allocate(tx: PgTx, model: str) -> tuple[int, str, int]:
    """The model's next number, taken: (model id, model name as stored, number)."""
    row = await tx.one("UPDATE models SET next_version = next_version + 1, updated_at = $2 "
                       "WHERE lower(name) = lower($1) AND deleted_at IS NULL "
                       "RETURNING id, name, next_version - 1 AS number", (model, tx.now))
    if row is None:
        raise NotFound(f"model {model!r} does not exist")
    return row["id"], row["name"], row["number"]
