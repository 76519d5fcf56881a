"""The in-process bus: committed events fanned out to live subscribers (streams, hooks).

The store publishes each committed group's events here (``store.on_commit``), after commit:
a subscriber only ever sees what is durable, and none of them can undo a write.
"""

from __future__ import annotations

import asyncio
from typing import Any


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
