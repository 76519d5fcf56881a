"""Hooks (PRODUCT.md §4): webhooks and local commands, fired after commit.

The dispatcher fans committed events out to matching hooks as ``hook_deliveries`` rows,
remembering the last event it handled in ``meta`` so a restart resumes where it stopped;
a delivery loop sends due deliveries and retries failures with exponential backoff. A hook
never blocks or undoes a transition: it only ever sees events that already committed.

Webhook requests carry ``X-Modelreg-Signature: sha256=HMAC(secret, "<event id>.<timestamp>.<body>")``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import json
import logging
import os
import signal
import time
from typing import Any

import aiohttp

from . import events as events_mod
from .db import Database
from .events import EventBus

log = logging.getLogger("modelreg.daemon.hooks")
MAX_ATTEMPTS = 8
COMMAND_TIMEOUT = 60.0
CURSOR_KEY = "hooks.last_event"


def signature(secret: str, event_id: int, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def matches(hook: Any, event: dict[str, Any]) -> bool:
    if hook["model"] and hook["model"].lower() != (event.get("model") or "").lower():  # names ignore case
        return False
    kinds = [k.strip() for k in (hook["event_kinds"] or "").split(",") if k.strip()]
    if kinds and not any(fnmatch.fnmatchcase(event["kind"], k) for k in kinds):
        return False
    if hook["stage"] and (event.get("data") or {}).get("to") != hook["stage"]:
        return False
    return True


class HookDispatcher:
    def __init__(self, db: Database, bus: EventBus, backoff_base: float = 1.0) -> None:
        self.db, self.bus, self.backoff_base = db, bus, backoff_base
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._session: aiohttp.ClientSession | None = None
        self._cursor: int | None = None  # last event fanned out

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        queue = self.bus.subscribe()
        self._tasks = [asyncio.create_task(self._fan_out(queue)), asyncio.create_task(self._deliver_loop())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session:
            await self._session.close()

    async def _fan_out(self, queue: asyncio.Queue) -> None:
        """Turn committed events into delivery rows, from the durable cursor on."""
        while True:
            await self._catch_up()
            item = await queue.get()
            if item is None and self.bus.closed:
                return
            # Drain whatever else arrived; the database is the source of truth.
            while not queue.empty():
                queue.get_nowait()

    async def _catch_up(self) -> None:
        if self._cursor is None:
            row = await self.db.one("SELECT value FROM meta WHERE key = ?", (CURSOR_KEY,))
            if row is None:  # first start: hooks begin with the events from now on
                async with self.db.transaction() as tx:
                    last = (await tx.one("SELECT coalesce(max(id), 0) FROM events"))[0]
                    await tx.execute("INSERT INTO meta VALUES (?, ?)", (CURSOR_KEY, str(last)))
                self._cursor = last
            else:
                self._cursor = int(row["value"])
        while True:
            rows = await self.db.all("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT 500", (self._cursor,))
            if not rows:
                return
            hooks = await self.db.all("SELECT * FROM hooks")
            # A hook sees events from its creation on, never older history.
            new = [(h["id"], r["id"]) for r in rows for h in hooks
                   if r["ts"] >= h["created_at"] and matches(h, events_mod.event_from_row(r))]
            self._cursor = rows[-1]["id"]
            if not new:
                continue  # nothing to deliver: no write needed, the cursor only matters with deliveries
            async with self.db.transaction() as tx:
                await tx.executemany("INSERT OR IGNORE INTO hook_deliveries (hook_id, event_id, state, next_at, updated_at) "
                                     f"VALUES (?, ?, 'pending', {tx.now}, {tx.now})", new)
                await tx.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (CURSOR_KEY, str(self._cursor)))
            self._wake.set()

    async def _deliver_loop(self) -> None:
        while True:
            due = await self.db.all(
                "SELECT d.*, h.kind, h.target, h.secret FROM hook_deliveries d JOIN hooks h ON h.id = d.hook_id "
                "WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT 50", (time.time(),))
            if due:
                await asyncio.gather(*(self._attempt(d) for d in due))
                continue
            nxt = await self.db.one("SELECT min(next_at) FROM hook_deliveries WHERE state = 'pending'")
            delay = max(0.05, min(30.0, (nxt[0] - time.time()) if nxt[0] else 30.0))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _attempt(self, d: Any) -> None:
        row = await self.db.one("SELECT * FROM events WHERE id = ?", (d["event_id"],))
        try:
            if row is None:
                raise LookupError(f"event {d['event_id']} is no longer in the log")
            event = events_mod.event_from_row(row)
            ok, status = await (self._webhook(d, event) if d["kind"] == "webhook" else self._command(d, event))
        except Exception as exc:  # noqa: BLE001 - a hook's failure is logged, never raised
            ok, status = False, f"{type(exc).__name__}: {exc}"
        attempts = d["attempts"] + 1
        state = "delivered" if ok else ("failed" if attempts >= MAX_ATTEMPTS or row is None else "pending")
        next_at = time.time() + self.backoff_base * (2 ** (attempts - 1))
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE hook_deliveries SET state = ?, attempts = ?, last_status = ?, next_at = ?, "
                             "updated_at = ? WHERE id = ?", (state, attempts, status[:500], next_at, tx.now, d["id"]))
        if not ok:
            log.warning("hook %s delivery of event %s failed (attempt %d): %s", d["hook_id"], d["event_id"], attempts, status)

    async def _webhook(self, d: Any, event: dict[str, Any]) -> tuple[bool, str]:
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "modelreg-hooks",
                   "X-Modelreg-Event": event["kind"], "X-Modelreg-Event-Id": str(event["id"]),
                   "X-Modelreg-Delivery": str(d["id"]), "X-Modelreg-Timestamp": str(ts)}
        if d["secret"]:
            headers["X-Modelreg-Signature"] = signature(d["secret"], event["id"], ts, body)
        assert self._session is not None
        try:
            async with self._session.post(d["target"], data=body, headers=headers) as resp:
                return 200 <= resp.status < 300, f"HTTP {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return False, f"{type(exc).__name__}: {exc}"

    async def _command(self, d: Any, event: dict[str, Any]) -> tuple[bool, str]:
        env = {**os.environ, "MODELREG_EVENT_KIND": event["kind"], "MODELREG_EVENT_ID": str(event["id"]),
               "MODELREG_MODEL": event.get("model") or "", "MODELREG_VERSION": str(event.get("version") or "")}
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", d["target"], stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        try:
            _, err = await asyncio.wait_for(proc.communicate(json.dumps(event).encode()), COMMAND_TIMEOUT)
        except asyncio.TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            return False, f"timed out after {COMMAND_TIMEOUT:g}s"
        tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        return proc.returncode == 0, f"exit {proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
