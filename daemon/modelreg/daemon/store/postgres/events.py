"""The append-only, hash-chained event log, PostgreSQL side (the rules: ``store/chain.py``).

Several daemons append at once, so the chain needs one writer at a time between reading the
head and writing the next row. The head row in ``meta`` (seeded by migration 2) is locked with
``SELECT … FOR UPDATE`` in the appending transaction: the next appender waits for that
transaction to end and, under READ COMMITTED, then reads the head as it committed, so ids
never repeat (no fork) and a rolled-back append leaves no hole (no gap: nothing advanced).
A row lock rather than an advisory lock because the head row must be updated in the same
transaction anyway, so any writer that moves the head (a future import, a hand-made fix)
serializes with appenders without having to know a lock key.

The lock is held until COMMIT, so a write appends its events last, after its other
statements, keeping the window in which appenders queue short (and the order of locks the
same in every write: other rows first, the head last, so two writes cannot deadlock on it).
"""

from __future__ import annotations

from typing import Any

from modelreg.shared.timefmt import iso

from ..chain import GENESIS, HEAD_KEY, canonical, check_rows, end_of_log, parse_head, row_hash
from .engine import PgTx, Sql

__all__ = ["GENESIS", "append", "chain_head", "verify_batch"]


async def append(tx: PgTx, kind: str, actor: str, *, model: str | None = None,
                 version: int | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append one event in ``tx`` (after its other writes); the event as published after COMMIT."""
    row = await tx.one("SELECT value FROM meta WHERE key = $1 FOR UPDATE", (HEAD_KEY,))
    if row is None:
        raise RuntimeError("the event chain's head row is missing (meta 'events.head'): migration 2 seeds it")
    head_id, prev = parse_head(row["value"])
    event_id = head_id + 1
    body = canonical(data or {})
    digest = row_hash(prev, event_id, tx.now, kind, actor, model, version, body)
    await tx.execute(
        "INSERT INTO events (id, ts, kind, actor, model, version, data, prev_hash, hash) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        (event_id, tx.now, kind, actor, model, version, body, prev, digest))
    await tx.execute("UPDATE meta SET value = $2 WHERE key = $1", (HEAD_KEY, f"{event_id}:{digest}"))
    event = {"id": event_id, "ts": iso(tx.now), "kind": kind, "actor": actor, "model": model,
             "version": version, "data": data or {}, "hash": digest}
    tx.events.append(event)
    return event


async def chain_head(q: Sql) -> tuple[int, str] | None:
    """The head as committed (``None`` only in a database migration 2 never reached)."""
    row = await q.one("SELECT value FROM meta WHERE key = $1", (HEAD_KEY,))
    return None if row is None else parse_head(row["value"])


async def verify_batch(q: Sql, head: tuple[int, str] | None, prev: str, expected_id: int, checked: int,
                       batch: int) -> tuple[dict[str, Any] | None, str, int, int]:
    """Check the next ``batch`` rows with the same checks as SQLite's (``chain.check_rows``)."""
    rows = await q.all("SELECT id, ts, kind, actor, model, version, data, prev_hash, hash FROM events "
                       "WHERE id >= $1 ORDER BY id LIMIT $2", (expected_id, batch))
    if not rows:
        return end_of_log(head, prev, expected_id, checked)
    return check_rows(rows, head, prev, expected_id, checked)
