"""Two PostgreSQL engines (two pools: two daemons) writing at once (issue 13): the event chain
has no gap or fork and verifies with SQLite's checks; version numbers come out 1..N. The
functions are the shared aggregates' (``store/sql``), as the daemon runs them."""

from __future__ import annotations

import asyncio
import random
import time
from types import SimpleNamespace

import pytest

from modelreg.daemon.store import chain
from modelreg.daemon.store.postgres.engine import PgTx, PostgresEngine
from modelreg.daemon.store.sql import events, versions


@pytest.fixture
async def daemons(pg_dsn: str):
    pair = [PostgresEngine(pg_dsn, max_size=8), PostgresEngine(pg_dsn, max_size=8)]
    await asyncio.gather(*(e.open() for e in pair))
    yield pair
    await asyncio.gather(*(e.close() for e in pair))


async def _verify(engine: PostgresEngine) -> dict:
    head = await engine.read(events.chain_head)
    prev, next_id, checked = chain.GENESIS, 1, 0
    while True:
        verdict, prev, next_id, checked = await engine.read(
            lambda q: events.verify_batch(q, head, prev, next_id, checked, 64))
        if verdict is not None:
            return verdict


async def test_concurrent_appends_form_one_chain(daemons: list[PostgresEngine]) -> None:
    published: list[list[dict]] = [[], []]
    for engine, seen in zip(daemons, published):
        engine.on_commit.append(seen.extend)

    def note(i: int):
        def fn(tx: PgTx) -> int:
            tx._run(asyncio.sleep(random.random() / 200))  # other work in the transaction, others run meanwhile
            if i % 50 == 7:
                events.append(tx, "test.doomed", "test", data={"i": i})
                raise ValueError("rolled back on purpose")
            return events.append(tx, "test.note", f"daemon{i % 2}", model="m", version=i, data={"i": i})["id"]
        return fn

    results = await asyncio.gather(*(daemons[i % 2].write(note(i)) for i in range(200)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 4 and all(isinstance(r, ValueError) for r in failed)
    ids = [r for r in results if not isinstance(r, BaseException)]
    assert sorted(ids) == list(range(1, 197))  # no gap where the rolled-back appends were, no id twice

    rows = await daemons[0].all("SELECT id, prev_hash, hash, data FROM events ORDER BY id")
    assert [r["id"] for r in rows] == list(range(1, 197))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:]))  # one line, no fork
    assert sorted(chain.canonical({"i": i}) for i in range(200) if i % 50 != 7) == sorted(r["data"] for r in rows)
    assert await _verify(daemons[1]) == {"ok": True, "checked": 196}
    assert await daemons[0].read(events.chain_head) == (196, rows[-1]["hash"])
    # Each daemon publishes every committed event (its own, and the other's by LISTEN/NOTIFY),
    # once and in order; never a rolled-back one.
    deadline = time.monotonic() + 30
    while min(len(seen) for seen in published) < 196 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [[e["id"] for e in seen] for seen in published] == [list(range(1, 197))] * 2

    # The verification is not vacuous: an edited row is found.
    await daemons[0].write(lambda tx: tx.execute("UPDATE events SET actor = 'mallory' WHERE id = 100"))
    verdict = await _verify(daemons[0])
    assert verdict["ok"] is False and verdict["first_bad_id"] == 100 and verdict["checked"] == 99


def _registration() -> SimpleNamespace:
    return SimpleNamespace(source="api", description="", facts={}, params={}, tags={}, metrics=[], datasets=[],
                           run=None, parents=[], external_parents=[])


async def test_concurrent_registrations_number_versions_without_gaps(daemons: list[PostgresEngine]) -> None:
    await daemons[0].write(lambda tx: versions.create_pending(tx, "fraud", _registration(), "test"))

    def register(i: int):
        def fn(tx: PgTx) -> int:
            # Names ignore case, as in SQLite: "Fraud" is the model "fraud".
            rec = versions.create_pending(tx, "Fraud", _registration(), f"daemon{i % 2}")
            tx._run(asyncio.sleep(random.random() / 100))  # the rest of a registration, holding the number
            return rec.number
        return fn

    numbers = await asyncio.gather(*(daemons[i % 2].write(register(i)) for i in range(32)))
    assert sorted(numbers) == list(range(2, 34))
    rows = await daemons[1].all("SELECT number, created_by FROM versions ORDER BY number")
    assert [r["number"] for r in rows] == list(range(1, 34))
    assert {r["created_by"] for r in rows} == {"test", "daemon0", "daemon1"}  # both daemons took part
    model = await daemons[0].one("SELECT name, next_version, live_versions FROM models")
    assert (model["name"], model["next_version"], model["live_versions"]) == ("fraud", 34, 33)
    assert await _verify(daemons[0]) == {"ok": True, "checked": 33}
