"""Events fan out across daemons: PostgreSQL LISTEN/NOTIFY (PRODUCT.md §12, issue 13).

Every write that appended events also runs ``pg_notify(CHANNEL, '<its last event id>')`` in
its transaction (``engine.py``), so the server announces it on COMMIT and never for a
rolled-back write. Each daemon LISTENs on a connection of its own, outside the pool, and on a
notification reads the events it has not published yet from the log, in order, in batches,
and hands them to the engine's ``on_commit`` subscribers exactly as its own commits are.

One number keeps that exactly once and in order: ``published``, the highest event id handed
over, every event up to it having been handed over too. Event ids are gap-free and commit in
id order (writes take turns registry-wide), so events are handed over only from
``published + 1`` on: a daemon's own commit that follows straight on goes at once (its
notification, coming back, is ignored); one that does not (another daemon's commit came
first) waits while the events in between are read from the log. A LISTEN connection that is
lost is opened again with backoff, and what committed meanwhile is read from ``published``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from ..sql.audit import events_after, last_event_id

if TYPE_CHECKING:
    from .engine import PostgresEngine

log = logging.getLogger("modelreg.store")

CHANNEL = "modelreg_events"
BATCH = 500
BACKOFF_MIN, BACKOFF_MAX = 0.2, 5.0
# With no notification for this long, the connection is pinged and the log read: a dead peer
# (a network cut) need not send a FIN, and a notification is never relied on alone.
HEARTBEAT = 10.0
PING_TIMEOUT = 5.0


class EventFeed:
    """The engine's ``published`` high-water mark and the LISTEN side of the fan-out."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine
        self.published = 0
        self.listening = False  # the LISTEN connection is up (shown by health and status)
        self._conn: asyncpg.Connection | None = None
        self._poke = asyncio.Event()
        self._reading = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """LISTEN, then take the log's end as published: nothing committed in between is missed."""
        try:
            await self._listen()
        except Exception as exc:  # noqa: BLE001 - the loop below reconnects
            log.warning("cannot LISTEN on %s yet (%s); retrying", self.engine.where, exc)
        self.published = await self.engine.read(last_event_id)
        self._task = asyncio.create_task(self._run(), name="modelreg-pg-listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop()

    async def committed(self, events: list[dict[str, Any]]) -> None:
        """This daemon's own commit: hand its events over now if they follow straight on, else
        read what other daemons committed before them first. Never raises: the write committed,
        and a catch-up that failed is done by the listener later."""
        if not events:
            return
        if events[0]["id"] == self.published + 1:
            self._hand_over(events)
            return
        try:
            await self.catch_up(upto=events[-1]["id"])
        except Exception as exc:  # noqa: BLE001 - the heartbeat or the reconnect catches up
            log.warning("could not read the events before %s from the log (%s); the listener will",
                        events[0]["id"], exc)

    async def catch_up(self, upto: int | None = None) -> None:
        """Hand over the log's events after ``published`` (up to its end, or at least ``upto``)."""
        async with self._reading:
            while upto is None or self.published < upto:
                after = self.published
                batch = await self.engine.read(lambda q: events_after(q, after, BATCH))
                self._hand_over(batch)
                if len(batch) < BATCH:
                    return

    def _hand_over(self, events: list[dict[str, Any]]) -> None:
        fresh = [e for e in events if e["id"] > self.published]
        if not fresh:
            return
        if fresh[0]["id"] != self.published + 1:  # cannot happen while ids are gap-free
            log.error("event %s follows %s: the log has a gap", fresh[0]["id"], self.published)
        self.published = fresh[-1]["id"]
        self.engine._publish(fresh)

    # -- the LISTEN connection -------------------------------------------------------------------

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.engine.dsn, timeout=10)
        try:
            conn.add_termination_listener(lambda _conn: self._poke.set())
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            conn.terminate()
            raise
        self._conn, self.listening = conn, True

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            newest = int(payload)
        except ValueError:
            newest = self.published + 1  # not ours to parse: read the log anyway
        if newest > self.published:
            self._poke.set()

    async def _drop(self) -> None:
        conn, self._conn, self.listening = self._conn, None, False
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), PING_TIMEOUT)
            except Exception:  # noqa: BLE001 - a dead server: drop it
                conn.terminate()

    async def _reconnect(self) -> None:
        if self._conn is not None:
            log.warning("lost the LISTEN connection to %s; reconnecting", self.engine.where)
        await self._drop()
        await self._listen()
        log.info("listening for other daemons' events on %s", self.engine.where)
        self._poke.set()  # whatever committed while we were away

    async def _ping(self) -> None:
        assert self._conn is not None
        try:
            await asyncio.wait_for(self._conn.execute("SELECT 1"), PING_TIMEOUT)
        except BaseException:
            self._conn.terminate()
            raise

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._reconnect()
                if not self._poke.is_set():
                    try:
                        await asyncio.wait_for(self._poke.wait(), HEARTBEAT)
                    except asyncio.TimeoutError:
                        await self._ping()
                self._poke.clear()
                if not self._conn.is_closed():
                    await self.catch_up()
                    delay = BACKOFF_MIN
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the server went away: back off, try again
                log.debug("event listener: %s", exc)
                self._poke.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
