"""The two mechanisms under the cluster tests, on two stores (two daemons' worth) over one real
PostgreSQL database: a hook delivery claimed by one daemon is another's only once the claim
expired (its claimer died mid-send), and a LISTEN connection that the server cuts is opened
again and catches up, publishing what committed meanwhile once, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from modelreg.daemon.store import PostgresStore
from modelreg.daemon.store.sql import events


@pytest.fixture
async def pair(pg_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    stores = (PostgresStore(pg_dsn), PostgresStore(pg_dsn))
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


async def _eventually(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while not (value := await predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def test_a_claimed_delivery_is_another_daemons_only_after_the_claim_expires(pair):
    a, b = pair
    hook = await a.hooks.add(kind="command", target="true", secret=None, event_kinds="", model=None, stage=None,
                             actor="tester")
    await a.hooks.start_dispatch()
    ping = await a.engine.write(lambda tx: events.append(tx, "test.ping", "tester"))
    # Both daemons' dispatchers matched the event; the second enqueue adds nothing.
    await a.hooks.enqueue([(hook.id, ping["id"])], ping["id"])
    await b.hooks.enqueue([(hook.id, ping["id"])], ping["id"])
    assert len(await a.hooks.deliveries(hook.id, 10)) == 1

    (mine,) = await a.hooks.claim("a:1", ttl=1.0)
    assert mine.event_id == ping["id"]
    assert await b.hooks.claim("b:1", ttl=1.0) == []
    assert [d["state"] for d in await b.hooks.deliveries(hook.id, 10)] == ["sending"]

    # A died mid-send: once its claim expired, B takes the delivery, and A's late answer is void.
    (theirs,) = await _eventually(lambda: b.hooks.claim("b:2", ttl=60.0), 10, "the claim to expire")
    assert theirs.id == mine.id
    assert not await a.hooks.record_attempt(mine.id, claim="a:1", state="delivered", attempts=1, status="exit 0",
                                            next_at=0.0)
    assert await b.hooks.record_attempt(theirs.id, claim="b:2", state="delivered", attempts=1, status="exit 0",
                                        next_at=0.0)
    (done,) = await a.hooks.deliveries(hook.id, 10)
    assert (done["state"], done["attempts"], done["last_status"]) == ("delivered", 1, "exit 0")
    assert await a.hooks.claim("a:2", ttl=1.0) == []


async def test_a_cut_listen_connection_reconnects_and_catches_up(pair, pg_dsn: str):
    a, b = pair
    seen: list[int] = []
    b.on_commit.append(lambda batch: seen.extend(e["id"] for e in batch))
    assert b.engine.feed.listening
    admin = await asyncpg.connect(pg_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", b.engine.feed._conn.get_server_pid())
    finally:
        await admin.close()
    # Committed while B's LISTEN connection is gone: their notifications never reach B.
    ids = [(await a.engine.write(lambda tx: events.append(tx, "test.ping", "tester")))["id"] for _ in range(3)]

    async def caught_up() -> bool:
        return len(seen) >= 3 and b.engine.feed.listening

    await _eventually(caught_up, 15, "B to reconnect and catch up")
    assert seen == ids
    four = (await a.engine.write(lambda tx: events.append(tx, "test.ping", "tester")))["id"]
    await _eventually(lambda: asyncio.sleep(0, result=seen[-1] == four), 5, "a live notification")
    assert seen == [*ids, four]
