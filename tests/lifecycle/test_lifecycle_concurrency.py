"""50 concurrent promotions of different versions of one model (issue 3, acceptance 3)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon_process import daemon_env
from lifecycle_support import INTEGRITY_ERRORS, Versions, connect_db
from modelreg.shared.client import Client
from modelreg.shared.errors import ModelregError

N = 50


async def _register(client: Client, versions: Versions, gated: bool) -> dict[int, float]:
    rng = random.Random(3)
    aucs = {n: round(rng.uniform(0.80, 0.99), 4) for n in range(1, N + 1)}
    for n, auc in aucs.items():
        await versions.add(n, auc=auc)
    if gated:
        # The gate is judged against whatever is production at commit time, so under contention
        # some attempts win and later ones must beat them: a mix of successes and clean refusals.
        await client.add_gate("auc >= production", stage="production", model="fraud")
    return aucs


async def _check_final_state(client: Client, versions: Versions, aucs: dict[int, float], won: set[int],
                             gated: bool) -> None:
    """Exactly one production; the other winners archived; the history replays to the final state."""
    assert won, "no promotion succeeded"
    production = (await client.versions("fraud", stage="production"))["items"]
    assert len(production) == 1
    winner = production[0]["version"]
    assert winner in won
    stages = await versions.stages()
    assert {n for n, s in stages.items() if s == "archived"} == won - {winner}
    assert {n for n, s in stages.items() if s == "none"} == set(aucs) - won

    # Replaying the history from "everything registered" gives the final state, and (with the
    # gate) every move into production beat the production version it replaced.
    items = (await client.history("fraud", limit=10000))["items"]
    replay = {n: "none" for n in aucs}
    current = None
    for item in items:
        n = item["version"]
        assert replay[n] == item["from"], f"history item {item['id']}: fraud@{n} was {replay[n]}, not {item['from']}"
        replay[n] = item["to"]
        if item["to"] == "production":
            if gated:
                assert current is None or aucs[n] >= aucs[current], f"fraud@{n} replaced a better fraud@{current}"
            current = n
        assert sum(s == "production" for s in replay.values()) <= 1
    assert replay == stages
    assert current == winner
    assert {i["version"] for i in items if i["to"] == "production"} == won


@pytest.mark.parametrize("gated", [False, True], ids=["no-gate", "auc-gate"])
async def test_fifty_concurrent_api_promotions_leave_one_production_and_a_replayable_history(
        daemon, client, versions: Versions, gated: bool):
    aucs = await _register(client, versions, gated)
    clients = [Client(url=daemon.url, token=daemon.token, actor=f"deployer-{n}") for n in aucs]
    start = asyncio.Event()

    async def attempt(c: Client, n: int) -> tuple[int, dict | ModelregError]:
        await start.wait()
        try:
            return n, await c.promote(f"fraud@{n}", reason=f"race {n}")
        except ModelregError as exc:
            return n, exc

    tasks = [asyncio.create_task(attempt(c, n)) for c, n in zip(clients, aucs)]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    start.set()
    outcomes = dict(await asyncio.gather(*tasks))
    elapsed = time.monotonic() - started
    await asyncio.gather(*(c.close() for c in clients))
    won = {n for n, o in outcomes.items() if isinstance(o, dict)}
    print(f"\n{N} concurrent API promotions in {elapsed:.2f} s: {len(won)} won")

    for n, exc in outcomes.items():
        if isinstance(exc, ModelregError):
            assert 400 <= exc.status < 500, f"fraud@{n}: {exc.status} {exc.code}: {exc.message}"
            assert exc.code == "gate_failed", f"fraud@{n}: {exc.code}: {exc.message}"
            assert "locked" not in exc.message.lower()
    if not gated:
        assert len(won) == N
    for n in won:  # each answer describes its own move, even if a later one archived it since
        assert outcomes[n]["version"]["stage"] == "production", (n, outcomes[n]["version"]["stage"])
    # Every success but the first archived the one before it.
    assert sorted(m for n in won for m in outcomes[n]["archived"]) == sorted(won - {(await client.resolve(
        "fraud@production"))["version"]})
    await _check_final_state(client, versions, aucs, won, gated)
    log = (daemon.home / "test-daemon.log").read_text()
    assert "database is locked" not in log and "unhandled error" not in log


@pytest.mark.slow
async def test_fifty_concurrent_cli_promotions(daemon, client, versions: Versions, home: Path):
    """The same race through 50 `modelreg promote … --to production` processes."""
    aucs = await _register(client, versions, gated=True)
    env = {**daemon_env(home), "MODELREG_URL": daemon.url}
    started = time.monotonic()
    procs = {n: subprocess.Popen([sys.executable, "-m", "modelreg.tui.cli", "promote", f"fraud@{n}", "--to",
                                  "production", "--reason", f"race {n}"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True) for n in aucs}
    results = {n: (p.wait(60), *p.communicate()) for n, p in procs.items()}
    elapsed = time.monotonic() - started
    won = {n for n, (code, _, _) in results.items() if code == 0}
    print(f"\n{N} concurrent CLI promotions in {elapsed:.2f} s: {len(won)} won")
    for n, (code, out, err) in results.items():
        assert code in (0, 3), f"fraud@{n} exited {code}:\n{out}\n{err}"
        assert "Traceback" not in err and "locked" not in err and "internal" not in err
        if code == 3:
            assert "✗ auc >= production" in out and "refused" in err
        else:
            assert f"fraud@{n} is now production" in out
    await _check_final_state(client, versions, aucs, won, gated=True)
    log = (daemon.home / "test-daemon.log").read_text()
    assert "database is locked" not in log and "unhandled error" not in log


async def test_the_database_itself_refuses_a_second_production_version(daemon, client, versions: Versions):
    """The one-production rule holds even for a writer that bypasses the daemon."""
    await versions.add(1)
    await versions.add(2)
    await client.promote("fraud@1", reason="first")
    with connect_db(daemon.home) as db, pytest.raises(INTEGRITY_ERRORS, match="(?i)unique"):
        db.execute("UPDATE versions SET stage = 'production' WHERE number = 2")
    assert await versions.stages() == {1: "production", 2: "none"}
