"""Hooks (PRODUCT.md §4): webhooks and local commands, fired after commit.

The dispatcher is an after-commit subscriber: it gets committed events from the bus, matches
them against the hooks it holds in memory (reloaded when a hook.added or hook.removed event
goes by), and enqueues the deliveries of a batch of events in one write, which also moves
its durable cursor (``store.hooks``), so a restart resumes where it stopped. The event rows
are read back only to catch up: at start, and when the bus dropped it for falling behind. A
failed fan-out is logged and retried; it never touches the write that produced the events.
A delivery loop claims due deliveries in a write, sends them, and retries failures with
exponential backoff. A hook never blocks or undoes a transition: it only ever sees events
that already committed.

Several daemons on one registry (issue 13) each run a dispatcher over the same events (the
store fans them out): the store enqueues only what no daemon enqueued yet, and a delivery
is sent by the daemon whose claim took it; one that dies mid-send leaves its claim to expire
(``CLAIM_S``), and another daemon sends it again (at least once, never lost).

Webhook requests carry ``X-Modelreg-Signature: sha256=HMAC(secret, "<event id>.<timestamp>.<body>")``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import signal
import socket
import time
from datetime import datetime
from typing import Any

import aiohttp

from modelreg.shared.errors import InvalidInput
from modelreg.shared.timefmt import iso

from .. import payloads
from ..store import Store
from ..store.records import DueDelivery, HookRecord
from .bus import EventBus

log = logging.getLogger("modelreg.daemon.hooks")
MAX_ATTEMPTS = 8
COMMAND_TIMEOUT = 60.0
CATCH_UP_BATCH = 500
CURSOR_EVERY = 1000  # with no delivery to enqueue, the durable cursor moves at most this often
RETRY_S = 1.0  # after a failed fan-out or delivery pass
HOOK_CHANGES = ("hook.added", "hook.removed")
# How long a claimed delivery stays this daemon's: longer than any attempt takes (a command's
# timeout; a webhook's is 15 s), so only a claimer that died loses it.
CLAIM_S = 2 * COMMAND_TIMEOUT


# -- hooks: list, add, remove, the delivery log ----------------------------------------------------

def hook_view(h: HookRecord) -> dict[str, Any]:
    return {"id": h.id, "kind": h.kind, "target": h.target, "events": h.event_kinds, "model": h.model,
            "stage": h.stage, "signed": bool(h.secret), "created_at": iso(h.created_at)}


async def list_hooks(store: Store) -> dict[str, Any]:
    return {"items": [hook_view(h) for h in await store.hooks.list()]}


async def add_hook(store: Store, body: Any, actor: str) -> dict[str, Any]:
    """Create a hook from a POST /v1/hooks body; the view shows the secret this once."""
    req = payloads.parse_hook(body)
    secret = req.secret
    if req.kind == "webhook" and not secret:
        secret = secrets.token_hex(24)
    hook = await store.hooks.add(kind=req.kind, target=req.target, secret=secret, event_kinds=req.events,
                                 model=req.model, stage=req.stage, actor=actor)
    view = hook_view(hook)
    view["secret"] = secret  # shown once, at creation
    return view


async def remove_hook(store: Store, hook_id: int, actor: str) -> dict[str, Any]:
    return hook_view(await store.hooks.remove(hook_id, actor))


async def deliveries(store: Store, hook_id: int, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        await store.hooks.deliveries(hook_id, 1)  # a missing hook is a 404 before a bad limit, as ever
        raise InvalidInput("limit must be between 1 and 1000")
    return {"items": await store.hooks.deliveries(hook_id, limit)}


# -- matching and signing --------------------------------------------------------------------------

def signature(secret: str, event_id: int, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _ms(text: str) -> int:
    """An event's ISO timestamp (millisecond precision) as whole milliseconds."""
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def matches(hook: HookRecord, event: dict[str, Any]) -> bool:
    # A hook sees events from its creation on, never older history (to the millisecond the
    # event's timestamp carries: the hook.added event itself is one of them).
    if _ms(event["ts"]) < math.floor(hook.created_at * 1000):
        return False
    if hook.model and hook.model.lower() != (event.get("model") or "").lower():  # names ignore case
        return False
    kinds = [k.strip() for k in hook.event_kinds.split(",") if k.strip()]
    if kinds and not any(fnmatch.fnmatchcase(event["kind"], k) for k in kinds):
        return False
    if hook.stage and (event.get("data") or {}).get("to") != hook.stage:
        return False
    return True


# -- the dispatcher --------------------------------------------------------------------------------

class HookDispatcher:
    def __init__(self, store: Store, bus: EventBus, backoff_base: float = 1.0) -> None:
        self.store, self.bus, self.backoff_base = store, bus, backoff_base
        # Names this daemon's claims (in the delivery rows, for whoever looks); one per pass.
        self._claimer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._passes = 0
        self._swept = 0  # every event up to here was fanned out before a delivery pass that finished
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._session: aiohttp.ClientSession | None = None
        self._hooks: list[HookRecord] = []
        self._cursor: int | None = None  # the newest event fanned out
        self._stored_cursor = 0  # the cursor as the store has it
        self._caught_up = 0  # events up to here came from a catch-up read: skip them on the bus

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        queue = self.bus.subscribe()  # before the catch-up read, so nothing falls in between
        self._tasks = [asyncio.create_task(self._fan_out(queue)), asyncio.create_task(self._deliver_loop())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session:
            await self._session.close()

    async def _fan_out(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Committed events → delivery rows; a failure is logged and the same events retried."""
        resync, pending = True, []
        while True:
            try:
                if resync:
                    await self._catch_up()
                    resync = False
                if pending:
                    await self._handle(pending)
                    pending = []
            except Exception:  # noqa: BLE001 - after commit: log, wait, retry the same events
                log.exception("hook fan-out failed; retrying in %gs", RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            if None in batch:
                if self.bus.closed:
                    return
                resync = True  # the bus dropped us for falling behind: the log has every event
            pending.extend(e for e in batch if e is not None)

    async def _catch_up(self) -> None:
        """Fan out the events after the durable cursor, reading them from the log."""
        if self._cursor is None:
            self._cursor, self._hooks = await self.store.hooks.start_dispatch()
            self._stored_cursor = self._cursor
        else:
            self._hooks = await self.store.hooks.list()
        self._caught_up = max(self._caught_up, self._cursor)
        while True:
            events = await self.store.audit.after(self._cursor, CATCH_UP_BATCH)
            if not events:
                return
            await self._handle(events)
            self._caught_up = max(self._caught_up, events[-1]["id"])
            if len(events) < CATCH_UP_BATCH:
                return

    async def _handle(self, events: list[dict[str, Any]]) -> None:
        """Match a batch against the hooks in memory; one write for its deliveries and the cursor."""
        assert self._cursor is not None
        pairs: list[tuple[int, int]] = []
        top, reloaded = self._cursor, False
        for event in events:
            if event["id"] <= self._caught_up:
                continue
            if event["kind"] in HOOK_CHANGES and not reloaded:
                # Committed, so the store has it (and any later change, which created_at sorts out).
                self._hooks, reloaded = await self.store.hooks.list(), True
            pairs += [(h.id, event["id"]) for h in self._hooks if matches(h, event)]
            top = max(top, event["id"])
        if pairs or top - self._stored_cursor >= CURSOR_EVERY:
            await self.store.hooks.enqueue(pairs, top)
            self._stored_cursor = top
        self._cursor = top
        if pairs:
            self._wake.set()

    def progress(self) -> dict[str, Any]:
        """Where this daemon's dispatcher is (GET /v1/status): the newest event it fanned out, and
        the newest one every delivery it led to had been claimed (by some daemon) for by then."""
        return {"fanned_out": self._cursor, "swept": self._swept, "claimer": self._claimer}

    async def _deliver_loop(self) -> None:
        while True:
            self._wake.clear()  # a wake during this pass is seen by the wait after it
            seen = self._cursor or 0
            try:
                self._passes += 1
                claim = f"{self._claimer}:{self._passes}"
                due = await self.store.hooks.claim(claim, CLAIM_S)
                if due:
                    # Each attempt records itself; one that could not stays claimed until the
                    # claim expires, and is sent again then (at least once, never lost).
                    attempts = (self._attempt(d, claim) for d in due)
                    for result in await asyncio.gather(*attempts, return_exceptions=True):
                        if isinstance(result, Exception):
                            log.error("could not record a hook delivery attempt: %s", result)
                    continue
                nxt = await self.store.hooks.next_due()
                self._swept = max(self._swept, seen)  # nothing due was left unclaimed
            except Exception:  # noqa: BLE001 - the store failed: log, wait, go on
                log.exception("hook delivery pass failed; retrying in %gs", RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            delay = max(0.05, min(30.0, (nxt - time.time()) if nxt else 30.0))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _attempt(self, d: DueDelivery, claim: str) -> None:
        event = d.event
        try:
            if event is None:
                raise LookupError(f"event {d.event_id} is no longer in the log")
            ok, status = await (self._webhook(d, event) if d.kind == "webhook" else self._command(d, event))
        except Exception as exc:  # noqa: BLE001 - a hook's failure is logged, never raised
            ok, status = False, f"{type(exc).__name__}: {exc}"
        attempts = d.attempts + 1
        state = "delivered" if ok else ("failed" if attempts >= MAX_ATTEMPTS or event is None else "pending")
        next_at = time.time() + self.backoff_base * (2 ** (attempts - 1))
        if not await self.store.hooks.record_attempt(d.id, claim=claim, state=state, attempts=attempts,
                                                     status=status[:500], next_at=next_at):
            log.warning("hook %s delivery of event %s outlived its claim; another claim has it", d.hook_id,
                        d.event_id)
        elif not ok:
            log.warning("hook %s delivery of event %s failed (attempt %d): %s", d.hook_id, d.event_id, attempts, status)

    async def _webhook(self, d: DueDelivery, event: dict[str, Any]) -> tuple[bool, str]:
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "modelreg-hooks",
                   "X-Modelreg-Event": event["kind"], "X-Modelreg-Event-Id": str(event["id"]),
                   "X-Modelreg-Delivery": str(d.id), "X-Modelreg-Timestamp": str(ts)}
        if d.secret:
            headers["X-Modelreg-Signature"] = signature(d.secret, event["id"], ts, body)
        assert self._session is not None
        try:
            async with self._session.post(d.target, data=body, headers=headers) as resp:
                return 200 <= resp.status < 300, f"HTTP {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return False, f"{type(exc).__name__}: {exc}"

    async def _command(self, d: DueDelivery, event: dict[str, Any]) -> tuple[bool, str]:
        env = {**os.environ, "MODELREG_EVENT_KIND": event["kind"], "MODELREG_EVENT_ID": str(event["id"]),
               "MODELREG_MODEL": event.get("model") or "", "MODELREG_VERSION": str(event.get("version") or "")}
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", d.target, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
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
