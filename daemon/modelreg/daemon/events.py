"""The append-only, hash-chained event log and the in-process bus that streams it.

Each row's hash covers its own fields and the previous row's hash, so editing or deleting
any row breaks the chain at that row (PRODUCT.md §5). The chain head (last id and hash) is
also kept in ``meta``, written in the same transaction: deleting the newest rows leaves the
head pointing past the end, and the next event still links to the head, not to whatever
row is last now. Events are appended inside the writing transaction and published to
subscribers only after it commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from modelreg.shared.timefmt import iso

from .db import Database, Transaction

GENESIS = "0" * 64
HEAD_KEY = "events.head"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(prev_hash: str, event_id: int, ts: float, kind: str, actor: str,
             model: str | None, version: int | None, data: str) -> str:
    payload = canonical([prev_hash, event_id, repr(ts), kind, actor, model, version, data])
    return hashlib.sha256(payload.encode()).hexdigest()


async def append(tx: Transaction, kind: str, actor: str, *, model: str | None = None,
                 version: int | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    head = await _head(tx)
    if head is None:  # a log written before the head was recorded
        last = await tx.one("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
        head = (last["id"], last["hash"]) if last else (0, GENESIS)
    event_id, prev = head[0] + 1, head[1]
    body = canonical(data or {})
    digest = row_hash(prev, event_id, tx.now, kind, actor, model, version, body)
    await tx.execute(
        "INSERT INTO events (id, ts, kind, actor, model, version, data, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event_id, tx.now, kind, actor, model, version, body, prev, digest),
    )
    await tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (HEAD_KEY, f"{event_id}:{digest}"))
    event = {"id": event_id, "ts": iso(tx.now), "kind": kind, "actor": actor, "model": model,
             "version": version, "data": data or {}, "hash": digest}
    tx.events.append(event)
    return event


async def _head(src: Database | Transaction) -> tuple[int, str] | None:
    row = await src.one("SELECT value FROM meta WHERE key = ?", (HEAD_KEY,))
    if row is None:
        return None
    head_id, _, head_hash = row["value"].partition(":")
    return int(head_id), head_hash


def event_from_row(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "ts": iso(row["ts"]), "kind": row["kind"], "actor": row["actor"],
            "model": row["model"], "version": row["version"], "data": json.loads(row["data"]),
            "hash": row["hash"]}


async def verify_chain(db: Database, batch: int = 5000) -> dict[str, Any]:
    """Walk the whole chain; report the first row whose link or content does not match."""
    # Read before the walk: every row up to the head had committed when it was written.
    head = await _head(db)
    prev, expected_id, checked = GENESIS, 1, 0
    while True:
        rows = await db.all(
            "SELECT id, ts, kind, actor, model, version, data, prev_hash, hash FROM events "
            "WHERE id >= ? ORDER BY id LIMIT ?", (expected_id, batch))
        if not rows:
            if head is not None and head[0] >= expected_id:
                return {"ok": False, "checked": checked, "first_bad_id": expected_id,
                        "message": f"event {expected_id} is missing (the log ends at {expected_id - 1}, "
                                   f"but {head[0]} events were written)"}
            return {"ok": True, "checked": checked}
        for row in rows:
            problem = None
            if row["id"] != expected_id:
                problem = f"event {expected_id} is missing (next row is {row['id']})"
            elif head is not None and row["id"] == head[0] and row["hash"] != head[1]:
                problem = f"event {row['id']} is not the event that was written last with that id"
            elif row["prev_hash"] != prev:
                problem = f"event {row['id']} does not link to the event before it"
            elif row_hash(prev, row["id"], row["ts"], row["kind"], row["actor"], row["model"],
                          row["version"], row["data"]) != row["hash"]:
                problem = f"event {row['id']} was changed after it was written"
            if problem:
                return {"ok": False, "checked": checked, "first_bad_id": row["id"] if row["id"] == expected_id else expected_id,
                        "message": problem}
            prev, expected_id, checked = row["hash"], row["id"] + 1, checked + 1


class EventBus:
    """Fan-out of committed events to live subscribers (WebSocket streams, hooks).

    A subscriber that falls too far behind gets its queue replaced by a single ``None``:
    "resync from the database by event id", which is where every event already is.
    """

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._max_backlog = max_backlog
        self.closed = False

    def publish(self, events: list[dict[str, Any]]) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() + len(events) > self._max_backlog:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
                continue
            for event in events:
                queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    def close(self) -> None:
        self.closed = True
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        self._subscribers.clear()
