"""GET /v1/events/stream: every event as a msgpack WebSocket frame, resumable by id; a
model-limited token gets only the events it may see (``policy.sees_event``), and a stream whose
named token is revoked or expires is closed (1008)."""

from __future__ import annotations

import asyncio
import logging

import msgpack
from aiohttp import WSCloseCode, WSMsgType, web

from ..keys import BUS, SOCKETS, STORE, TOKENS
from ..store import Store
from ..services.identity import Identity
from ..services.tokens import CACHE_TTL
from .http import identity, query_int
from .policy import sees_event

routes = web.RouteTableDef()
log = logging.getLogger("modelreg.daemon.stream")
_BATCH = 500
_RETRY_S = 1.0
RECHECK_S = CACHE_TTL  # a named token revoked or expired mid-stream: the stream closes within this


@routes.get("/v1/events/stream")
async def stream(request: web.Request) -> web.WebSocketResponse:
    """Backlog after ``after`` from the store, then live events from the bus.

    The bus subscription starts before the backlog is read, so nothing committed in
    between is lost; ids already sent are skipped.
    """
    after = query_int(request, "after")
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    bus, store, who = request.app[BUS], request.app[STORE], identity(request)
    queue = bus.subscribe()
    last = after
    try:
        if last is None:
            last = await _retrying(store.audit.last_id)
        last = await _backlog(ws, store, last, who)
        reader = asyncio.create_task(_drain_client(ws))
        getter: asyncio.Task | None = None
        recheck = RECHECK_S if who.token_id is not None else None  # the home's token sleeps until an event
        while not ws.closed:
            getter = getter or asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, timeout=recheck, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                break
            if not await _still_valid(request, who):
                getter.cancel()
                reader.cancel()  # close() reads the client's answer itself
                await asyncio.gather(reader, return_exceptions=True)
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"the token was revoked or has expired")
                break
            if getter not in done:
                continue
            event, getter = getter.result(), None
            if event is None:  # the bus dropped us (too slow) or is closing: catch up from the store
                if request.app[BUS].closed:
                    break
                bus.unsubscribe(queue)
                queue = bus.subscribe()
                last = await _backlog(ws, store, last, who)
                continue
            if event["id"] <= last:
                continue
            if sees_event(who, event):
                await ws.send_bytes(msgpack.packb(event, use_bin_type=True, default=str))
            last = event["id"]
        reader.cancel()
        if getter is not None:
            getter.cancel()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        bus.unsubscribe(queue)
        request.app[SOCKETS].discard(ws)
        await ws.close()
    return ws


async def _still_valid(request: web.Request, who: Identity) -> bool:
    """Whether a named token still holds (the lookup is cached: this costs a hash, not a read)."""
    if who.token_id is None:
        return True
    secret = request.headers.get("Authorization", "").partition(" ")[2].strip()
    identity, _ = await request.app[TOKENS].identify(secret)
    return identity is not None


async def _retrying(read):  # noqa: ANN001, ANN202 - a store read; a failure is logged and retried
    while True:
        try:
            return await read()
        except Exception:  # noqa: BLE001 - the stream outlives a failed read
            log.exception("event stream: reading the log failed; retrying in %gs", _RETRY_S)
            await asyncio.sleep(_RETRY_S)


async def _backlog(ws: web.WebSocketResponse, store: Store, last: int, who: Identity) -> int:
    while True:
        events = await _retrying(lambda: store.audit.after(last, _BATCH))
        for event in events:
            if sees_event(who, event):
                await ws.send_bytes(msgpack.packb(event, use_bin_type=True, default=str))
            last = event["id"]
        if len(events) < _BATCH:
            return last


async def _drain_client(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return
