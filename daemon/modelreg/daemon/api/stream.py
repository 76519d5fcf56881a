"""GET /v1/events/stream: every event as a msgpack WebSocket frame, resumable by id."""

from __future__ import annotations

import asyncio

import msgpack
from aiohttp import WSMsgType, web

from ..events import event_from_row
from ..keys import BUS, DB, SOCKETS
from .http import query_int

routes = web.RouteTableDef()
_BATCH = 500


@routes.get("/v1/events/stream")
async def stream(request: web.Request) -> web.WebSocketResponse:
    """Backlog after ``after`` from the database, then live events from the bus.

    The bus subscription starts before the backlog is read, so nothing committed in
    between is lost; ids already sent are skipped.
    """
    after = query_int(request, "after")
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    bus, db = request.app[BUS], request.app[DB]
    queue = bus.subscribe()
    last = after
    try:
        if last is None:
            row = await db.one("SELECT max(id) FROM events")
            last = row[0] or 0
        last = await _backlog(ws, db, last)
        reader = asyncio.create_task(_drain_client(ws))
        while not ws.closed:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                break
            event = getter.result()
            if event is None:  # the bus dropped us (too slow) or is closing: catch up from the database
                if request.app[BUS].closed:
                    break
                bus.unsubscribe(queue)
                queue = bus.subscribe()
                last = await _backlog(ws, db, last)
                continue
            if event["id"] <= last:
                continue
            await ws.send_bytes(msgpack.packb(event, use_bin_type=True, default=str))
            last = event["id"]
        reader.cancel()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        bus.unsubscribe(queue)
        request.app[SOCKETS].discard(ws)
        await ws.close()
    return ws


async def _backlog(ws: web.WebSocketResponse, db, last: int) -> int:
    while True:
        rows = await db.all("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (last, _BATCH))
        for row in rows:
            await ws.send_bytes(msgpack.packb(event_from_row(row), use_bin_type=True, default=str))
            last = row["id"]
        if len(rows) < _BATCH:
            return last


async def _drain_client(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return
