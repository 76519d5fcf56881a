"""The append-only, hash-chained event log (PRODUCT.md §5).

Each row's hash covers its own fields and the previous row's hash, so editing or deleting
any row breaks the chain at that row. The chain head (last id and hash) is also kept in
``meta``, written in the same transaction: deleting the newest rows leaves the head pointing
past the end, and the next event still links to the head, not to whatever row is last now.
Events are appended inside the writing transaction (``tx.events``) and published by the
engine only after it commits.
"""

from __future__ import annotations

import json
from typing import Any

from modelreg.shared.timefmt import iso

from ..chain import GENESIS, HEAD_KEY, canonical, check_rows, end_of_log, parse_head, row_hash
from .tx import Sql, WriteTx

__all__ = ["GENESIS", "HEAD_KEY", "append", "canonical", "chain_head", "event_view", "row_hash", "verify_batch"]


def append(tx: WriteTx, kind: str, actor: str, *, model: str | None = None,
           version: int | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    head = chain_head(tx, lock=True)
    if head is None:  # a log written before the head was recorded
        last = tx.one("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
        head = (last["id"], last["hash"]) if last else (0, GENESIS)
    event_id, prev = head[0] + 1, head[1]
    body = canonical(data or {})
    digest = row_hash(prev, event_id, tx.now, kind, actor, model, version, body)
    tx.execute(
        "INSERT INTO events (id, ts, kind, actor, model, version, data, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event_id, tx.now, kind, actor, model, version, body, prev, digest),
    )
    tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (HEAD_KEY, f"{event_id}:{digest}"))
    event = {"id": event_id, "ts": iso(tx.now), "kind": kind, "actor": actor, "model": model,
             "version": version, "data": data or {}, "hash": digest}
    tx.events.append(event)
    return event


def chain_head(q: Sql, lock: bool = False) -> tuple[int, str] | None:
    """The head as committed. ``lock``: hold the head row until this write commits, so two
    writers (two daemons on PostgreSQL) never link to the same head: no fork, no gap."""
    row = q.one("SELECT value FROM meta WHERE key = ?" + (q.dialect.row_lock if lock else ""), (HEAD_KEY,))
    if row is None:
        return None
    return parse_head(row["value"])


def event_view(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "ts": iso(row["ts"]), "kind": row["kind"], "actor": row["actor"],
            "model": row["model"], "version": row["version"], "data": json.loads(row["data"]),
            "hash": row["hash"]}


def verify_batch(q: Sql, head: tuple[int, str] | None, prev: str, expected_id: int, checked: int,
                 batch: int) -> tuple[dict[str, Any] | None, str, int, int]:
    """Check the next ``batch`` rows; (verdict or None to go on, prev hash, next id, checked)."""
    rows = q.all("SELECT id, ts, kind, actor, model, version, data, prev_hash, hash FROM events "
                 "WHERE id >= ? ORDER BY id LIMIT ?", (expected_id, batch))
    if not rows:
        return end_of_log(head, prev, expected_id, checked)
    return check_rows(rows, head, prev, expected_id, checked)
