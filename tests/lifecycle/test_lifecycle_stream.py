"""The live event stream (WebSocket, msgpack frames): backlog after an id, then live events;
a client that reconnects with the last id it saw misses nothing, even across a daemon crash."""

from __future__ import annotations

import asyncio
import contextlib

from daemon_process import start_daemon
from lifecycle_support import Versions, wait_until
from modelreg.shared.client import Client


async def _consume(c: Client, after: int, sink: list[dict]) -> None:
    with contextlib.suppress(Exception):  # the connection going away ends the stream
        async for event in c.stream_events(after=after):
            sink.append(event)


def _ids(events: list[dict]) -> list[int]:
    return [e["id"] for e in events]


async def _all_events(c: Client) -> list[dict]:
    out, after = [], 0
    while page := (await c.events(after=after, limit=1000))["items"]:
        out += page
        after = page[-1]["id"]
    return out


async def test_stream_backlog_then_live_and_resume_misses_nothing(daemon, client, versions: Versions, tmp_path):
    for n in (1, 2, 3):
        await versions.add(n)
    backlog_end = (await client.events(limit=1))["last_id"]
    assert backlog_end > 4

    # Backlog after event 3, then live events as they commit.
    seen: list[dict] = []
    watcher = Client(url=daemon.url, token=daemon.token)
    task = asyncio.create_task(_consume(watcher, 3, seen))
    await wait_until(lambda: _has(seen, backlog_end), 10, "the backlog")
    assert _ids(seen) == list(range(4, backlog_end + 1))
    await client.promote("fraud@1", reason="live")
    live_end = (await client.events(limit=1))["last_id"]
    await wait_until(lambda: _has(seen, live_end), 10, "the live event")
    assert seen[-1]["kind"] == "stage.changed" and seen[-1]["data"]["to"] == "production"

    # The watcher drops while changes keep coming, more are made while it is away, and it
    # reconnects from the last id it saw.
    writing = asyncio.create_task(_churn(client, 40))
    await wait_until(lambda: _has(seen, live_end + 2), 10, "the first changes of the churn")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await watcher.close()
    dropped_at = seen[-1]["id"]
    await writing
    await _churn(client, 10)
    watcher = Client(url=daemon.url, token=daemon.token)
    task = asyncio.create_task(_consume(watcher, dropped_at, seen))
    await _churn(client, 10)
    churn_end = (await client.events(limit=1))["last_id"]
    assert churn_end - dropped_at >= 20
    await wait_until(lambda: _has(seen, churn_end), 10, "the events after reconnecting")
    assert _ids(seen) == list(range(4, churn_end + 1)), "an event was missed or repeated"

    # The daemon is killed mid-stream; changes are made after it restarts; resume again.
    daemon.kill9()
    await asyncio.wait_for(task, 10)
    await watcher.close()
    restarted = start_daemon(daemon.home)
    try:
        async with Client(url=restarted.url, token=restarted.token) as c2:
            await c2.promote("fraud@2", reason="after the crash")
            await c2.rollback("fraud", reason="bad p99")
            final = await _all_events(c2)
            async with Client(url=restarted.url, token=restarted.token) as w2:
                task = asyncio.create_task(_consume(w2, seen[-1]["id"], seen))
                await wait_until(lambda: _has(seen, final[-1]["id"]), 10, "the events after the restart")
                # Live after resuming, too.
                await c2.set_alias("fraud", "champion", 3)
                final = await _all_events(c2)
                await wait_until(lambda: _has(seen, final[-1]["id"]), 10, "a live event after the restart")
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        restarted.stop()
    assert _ids(seen) == list(range(4, final[-1]["id"] + 1))
    assert seen == [e for e in final if e["id"] > 3], "streamed events differ from the stored log"


async def _has(seen: list[dict], event_id: int) -> bool:
    return bool(seen) and seen[-1]["id"] >= event_id


async def _churn(c: Client, n: int) -> None:
    for i in range(n):
        await c.set_alias("fraud", "churn", 1 + i % 3)
