"""The hook dispatcher as an after-commit subscriber (issue 9): live events are matched from the
bus without reading the event rows back; the log is read only to catch up (at start, after the
bus dropped a subscriber that fell behind); a restart resumes from the durable cursor; a failed
fan-out is retried with the same events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import team_backend
from lifecycle_support import wait_until
from modelreg.daemon.services import hooks as hooks_service
from modelreg.daemon.services.bus import EventBus
from modelreg.daemon.services.hooks import HookDispatcher
from modelreg.daemon.store import Store, open_store
from modelreg.daemon.store.sql import events


class Running:
    def __init__(self, home: Path, backlog: int = 10_000) -> None:
        # The home's registry on the backend the run uses (SQLite's file, or its PostgreSQL database).
        self.store = open_store(team_backend.env_for(home).get("MODELREG_DATABASE"), home)
        self.bus = EventBus(max_backlog=backlog)
        self.dispatcher = HookDispatcher(self.store, self.bus, backoff_base=0.1)
        self.catch_up_reads = 0
        after = self.store.audit.after

        async def counted(event_id: int, limit: int):
            self.catch_up_reads += 1
            return await after(event_id, limit)

        self.store.audit.after = counted  # type: ignore[method-assign]

    async def start(self) -> None:
        await self.store.open()
        self.store.on_commit.append(self.bus.publish)
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.close()
        self.bus.close()
        await self.store.close()

    async def emit(self, n: int, kind: str = "test.ping") -> None:
        await self.store.engine.write(lambda tx: [events.append(tx, kind, "tester") for _ in range(n)])

    async def delivered(self, hook_id: int, n: int) -> None:
        async def enough() -> bool:
            return len(await self.store.hooks.deliveries(hook_id, 1000)) >= n
        await wait_until(enough, 10, f"{n} deliveries")
        await asyncio.sleep(0.2)  # a duplicate would show now
        assert len(await self.store.hooks.deliveries(hook_id, 1000)) == n


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    r = Running(tmp_path)
    await r.start()
    yield r
    await r.stop()


async def _hook(store: Store, events_glob: str = "test.*") -> int:
    return (await hooks_service.add_hook(store, {"kind": "command", "target": "true", "events": events_glob},
                                         "tester"))["id"]


async def test_live_events_are_matched_without_reading_the_log(running: Running):
    hook_id = await _hook(running.store)
    await asyncio.sleep(0.1)
    reads = running.catch_up_reads
    await running.emit(3)
    await running.emit(2, kind="other.kind")  # not matched
    await running.delivered(hook_id, 3)
    assert running.catch_up_reads == reads


async def test_a_hook_removed_before_its_deliveries_are_enqueued_gets_none(running: Running, caplog):
    hook_id = await _hook(running.store)
    kept = await _hook(running.store)
    await running.emit(1)
    await running.store.hooks.remove(hook_id, "tester")
    await running.emit(1)
    await running.delivered(kept, 2)
    assert [h.id for h in await running.store.hooks.list()] == [kept]
    # Matched in memory, removed before the write: the store skips it, the batch goes on.
    last = await running.store.audit.last_id()
    await running.store.hooks.enqueue([(hook_id, last), (kept, last)], last)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_subscriber_that_fell_behind_catches_up_from_the_log(tmp_path: Path):
    r = Running(tmp_path, backlog=3)
    await r.start()
    try:
        hook_id = await _hook(r.store)
        await asyncio.sleep(0.1)
        reads = r.catch_up_reads
        await r.emit(10)  # more than the bus keeps for one subscriber: it is told to resync
        await r.delivered(hook_id, 10)
        assert r.catch_up_reads > reads
    finally:
        await r.stop()


async def test_a_restart_resumes_from_the_cursor(tmp_path: Path):
    r = Running(tmp_path)
    await r.start()
    hook_id = await _hook(r.store)
    await r.emit(2)
    await r.delivered(hook_id, 2)
    await r.dispatcher.close()  # the dispatcher stops; events go on being written
    await r.emit(3)
    r.bus.close()
    await r.store.close()

    again = Running(tmp_path)
    await again.start()
    try:
        await again.delivered(hook_id, 5)
    finally:
        await again.stop()


async def test_a_failed_fan_out_is_logged_and_retried(running: Running, monkeypatch, caplog):
    hook_id = await _hook(running.store)
    await asyncio.sleep(0.1)
    enqueue, failures = running.store.hooks.enqueue, []

    async def flaky(pairs, cursor):
        if not failures:
            failures.append(cursor)
            raise OSError("disk hiccup")
        await enqueue(pairs, cursor)

    monkeypatch.setattr(running.store.hooks, "enqueue", flaky)
    monkeypatch.setattr(hooks_service, "RETRY_S", 0.05)
    await running.emit(2)
    await running.delivered(hook_id, 2)
    assert failures and "hook fan-out failed" in caplog.text
