"""Hooks and their deliveries.

Deliveries are rows in ``hook_deliveries``: enqueued in one write per batch of committed
events the dispatcher matched, claimed when due, and marked delivered, failed or pending
again (with the next attempt's time) after each attempt. ``meta[hooks.last_event]`` is the
dispatcher's durable cursor: the last event it has fanned out, so a restart resumes there.

Several daemons on one registry run a dispatcher each over the same events (issue 13); writes
take turns registry-wide, so deciding inside the write keeps each delivery once: a batch
enqueues only events after the stored cursor (a daemon further ahead has done the rest), and
a due delivery is claimed (state ``sending``, ``claimed_by``, ``next_at`` its expiry) before
it is sent, by one daemon; an attempt is recorded only under the claim it was sent with.
"""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import NotFound
from modelreg.shared.timefmt import iso

from ..records import DueDelivery, HookRecord
from . import events
from .tx import Sql, Engine, WriteTx

CURSOR_KEY = "hooks.last_event"


def hook_record(row: Any) -> HookRecord:
    return HookRecord(id=row["id"], kind=row["kind"], target=row["target"], secret=row["secret"],
                      event_kinds=row["event_kinds"] or "", model=row["model"], stage=row["stage"],
                      created_at=row["created_at"])


def all_hooks(q: Sql) -> list[HookRecord]:
    return [hook_record(r) for r in q.all("SELECT * FROM hooks ORDER BY id")]


def _cursor(q: Sql) -> int | None:
    row = q.one("SELECT value FROM meta WHERE key = ?", (CURSOR_KEY,))
    return None if row is None else int(row["value"])


def _set_cursor(tx: WriteTx, event_id: int) -> None:
    tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (CURSOR_KEY, str(event_id)))


def _add(tx: WriteTx, kind: str, target: str, secret: str | None, kinds: str, model: str | None,
         stage: str | None, actor: str) -> HookRecord:
    if model:
        known = tx.one("SELECT name FROM models WHERE name = ?", (model,))
        model = known["name"] if known else model  # the stored spelling when the model exists
    row = tx.one("INSERT INTO hooks (kind, target, secret, event_kinds, model, stage, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *", (kind, target, secret, kinds, model, stage, tx.now))
    hook = hook_record(row)
    events.append(tx, "hook.added", actor, model=model,
                  data={"id": hook.id, "kind": kind, "target": target, "events": kinds, "stage": stage})
    return hook


def _remove(tx: WriteTx, hook_id: int, actor: str) -> HookRecord:
    row = tx.one("SELECT * FROM hooks WHERE id = ?", (hook_id,))
    if row is None:
        raise NotFound(f"no hook {hook_id}")
    tx.execute("DELETE FROM hooks WHERE id = ?", (hook_id,))
    events.append(tx, "hook.removed", actor, model=row["model"], data={"id": hook_id})
    return hook_record(row)


def _deliveries(q: Sql, hook_id: int, limit: int) -> list[dict[str, Any]]:
    if q.one("SELECT 1 FROM hooks WHERE id = ?", (hook_id,)) is None:
        raise NotFound(f"no hook {hook_id}")
    rows = q.all("SELECT d.*, e.kind AS event_kind, e.model, e.version FROM hook_deliveries d "
                 "JOIN events e ON e.id = d.event_id WHERE d.hook_id = ? ORDER BY d.id DESC LIMIT ?", (hook_id, limit))
    return [{"id": r["id"], "event_id": r["event_id"], "event": r["event_kind"], "model": r["model"],
             "version": r["version"], "state": r["state"], "attempts": r["attempts"], "last_status": r["last_status"],
             "next_attempt_at": iso(r["next_at"]) if r["state"] == "pending" else None,
             "updated_at": iso(r["updated_at"])} for r in rows]


def _start(tx: WriteTx) -> tuple[int, list[HookRecord]]:
    """The cursor (set to the newest event on first start: hooks begin from now) and the hooks."""
    cursor = _cursor(tx)
    if cursor is None:
        cursor = tx.one("SELECT coalesce(max(id), 0) AS last FROM events")["last"]
        _set_cursor(tx, cursor)
    return cursor, all_hooks(tx)


def _enqueue(tx: WriteTx, pairs: list[tuple[int, int]], cursor: int) -> None:
    # Events up to the stored cursor were fanned out already, by this dispatcher or another
    # daemon's: every event up to it was matched by whoever moved it there. A hook removed
    # since it was matched is skipped (no row to reference); a pair already enqueued is too.
    stored = _cursor(tx)
    tx.executemany(
        "INSERT INTO hook_deliveries (hook_id, event_id, state, next_at, updated_at) "
        "SELECT id, ?, 'pending', ?, ? FROM hooks WHERE id = ? ON CONFLICT (hook_id, event_id) DO NOTHING",
        [(event_id, tx.now, tx.now, hook_id) for hook_id, event_id in pairs if stored is None or event_id > stored])
    if stored is None or cursor > stored:
        _set_cursor(tx, cursor)


def _claim(tx: WriteTx, claim: str, ttl: float, limit: int) -> list[DueDelivery]:
    """Due deliveries (pending ones whose time came, and claims that expired) claimed for ``ttl`` s."""
    rows = tx.all(
        "SELECT d.id, d.hook_id, d.event_id, d.attempts, h.kind, h.target, h.secret, e.id AS e_id, e.ts, "
        "e.kind AS e_kind, e.actor, e.model, e.version, e.data, e.hash FROM hook_deliveries d "
        "JOIN hooks h ON h.id = d.hook_id LEFT JOIN events e ON e.id = d.event_id "
        "WHERE d.state IN ('pending', 'sending') AND d.next_at <= ? ORDER BY d.next_at LIMIT ?", (tx.now, limit))
    tx.executemany("UPDATE hook_deliveries SET state = 'sending', claimed_by = ?, next_at = ?, updated_at = ? "
                   "WHERE id = ?", [(claim, tx.now + ttl, tx.now, r["id"]) for r in rows])
    return [DueDelivery(id=r["id"], hook_id=r["hook_id"], event_id=r["event_id"], attempts=r["attempts"],
                        kind=r["kind"], target=r["target"], secret=r["secret"],
                        event=None if r["e_id"] is None else events.event_view(
                            {"id": r["e_id"], "ts": r["ts"], "kind": r["e_kind"], "actor": r["actor"],
                             "model": r["model"], "version": r["version"], "data": r["data"], "hash": r["hash"]}))
            for r in rows]


def _next_due(q: Sql) -> float | None:
    """The next pending attempt's time, or the next claim's expiry."""
    return q.one("SELECT min(next_at) AS at FROM hook_deliveries WHERE state IN ('pending', 'sending')")["at"]


def _record_attempt(tx: WriteTx, delivery_id: int, claim: str, state: str, attempts: int, status: str,
                    next_at: float) -> bool:
    return tx.execute("UPDATE hook_deliveries SET state = ?, attempts = ?, last_status = ?, next_at = ?, "
                      "updated_at = ?, claimed_by = NULL WHERE id = ? AND state = 'sending' AND claimed_by = ?",
                      (state, attempts, status, next_at, tx.now, delivery_id, claim)).rowcount == 1


class HookStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- hooks -----------------------------------------------------------------------------------

    async def list(self) -> list[HookRecord]:
        return await self.engine.read(all_hooks)

    async def add(self, *, kind: str, target: str, secret: str | None, event_kinds: str, model: str | None,
                  stage: str | None, actor: str) -> HookRecord:
        """Create a hook (the model named in its stored spelling when it exists) and log hook.added."""
        return await self.engine.write(lambda tx: _add(tx, kind, target, secret, event_kinds, model, stage, actor))

    async def remove(self, hook_id: int, actor: str) -> HookRecord:
        """Delete a hook (its deliveries go with it) and log hook.removed; NotFound if there is none."""
        return await self.engine.write(lambda tx: _remove(tx, hook_id, actor))

    async def deliveries(self, hook_id: int, limit: int) -> list[dict[str, Any]]:
        """A hook's delivery log, newest first (API views); NotFound if there is no such hook."""
        return await self.engine.read(lambda q: _deliveries(q, hook_id, limit))

    # -- the dispatcher --------------------------------------------------------------------------

    async def start_dispatch(self) -> tuple[int, list[HookRecord]]:
        """The fan-out cursor (the newest event on first start) and every hook, in one write."""
        return await self.engine.write(_start)

    async def enqueue(self, pairs: list[tuple[int, int]], cursor: int) -> None:
        """One pending delivery per (hook id, event id), and the cursor moved to ``cursor``."""
        await self.engine.write(lambda tx: _enqueue(tx, pairs, cursor))

    async def claim(self, claim: str, ttl: float, limit: int = 50) -> list[DueDelivery]:
        """Claim the deliveries whose time has come (oldest first, each with its hook and event)
        for ``ttl`` seconds under the name ``claim``: no other claim gets them until it expires."""
        return await self.engine.write(lambda tx: _claim(tx, claim, ttl, limit))

    async def next_due(self) -> float | None:
        """When the next pending delivery is due (None: nothing pending)."""
        return await self.engine.read(_next_due)

    async def record_attempt(self, delivery_id: int, *, claim: str, state: str, attempts: int, status: str,
                             next_at: float) -> bool:
        """An attempt's outcome: state delivered, failed, or pending again from ``next_at``. False
        (nothing recorded) when ``claim`` no longer holds the delivery: it expired and another
        claim took it over."""
        return await self.engine.write(lambda tx: _record_attempt(tx, delivery_id, claim, state, attempts, status,
                                                                  next_at))
