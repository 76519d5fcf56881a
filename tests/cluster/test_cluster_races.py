"""Two daemons on one PostgreSQL + S3 registry race each other (issue 13, acceptance 2): 32
registrations through both get 32 distinct, gap-free version numbers; 30 promotions through
both leave exactly one production version, and `modelreg audit verify` finds the chain intact."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from cluster_support import MODEL, Cluster, register
from daemon_process import DaemonProcess, daemon_env
from modelreg.shared.errors import ModelregError


async def _race(calls: list) -> tuple[list, float]:
    """Run the coroutine factories at once (after every task is waiting); outcomes and seconds."""
    start = asyncio.Event()

    async def one(call):
        await start.wait()
        try:
            return await call()
        except ModelregError as exc:
            return exc

    tasks = [asyncio.create_task(one(c)) for c in calls]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    start.set()
    outcomes = await asyncio.gather(*tasks)
    return outcomes, time.monotonic() - started


def _cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelreg.tui.cli", *args], capture_output=True, text=True,
                          env=daemon_env(daemon.home), timeout=120, stdin=subprocess.DEVNULL)


async def test_32_registrations_raced_across_two_daemons_get_32_gap_free_numbers(cluster: Cluster):
    async with cluster.clients(16) as clients:  # a, b, a, b …: 16 registrations through each daemon
        outcomes, elapsed = await _race([lambda c=c, n=n: register(c, cluster.root, n)
                                         for n, c in enumerate(clients, 1)])
        errors = [o for o in outcomes if isinstance(o, ModelregError)]
        assert not errors, [f"{e.code}: {e.message}" for e in errors]
        numbers = [v["version"] for v in outcomes]
        print(f"\n32 registrations through two daemons in {elapsed:.2f} s")
        assert sorted(numbers) == list(range(1, 33))

        # Both daemons list the same 32 ready versions, whichever of them registered each one.
        seen = []
        for client in clients[:2]:
            seen.append({v["version"]: (v["status"], v["content_digest"])
                         async for v in client.iter_versions(MODEL)})
        assert seen[0] == seen[1] and sorted(seen[0]) == list(range(1, 33))
        assert {s for s, _ in seen[0].values()} == {"ready"}
        assert len({d for _, d in seen[0].values()}) == 32  # each its own files


async def test_30_promotions_raced_across_two_daemons_leave_one_production(cluster: Cluster):
    async with cluster.clients(15) as clients:  # 15 promotions through each daemon
        made, _ = await _race([lambda c=c, n=n: register(c, cluster.root, n) for n, c in enumerate(clients, 1)])
        assert sorted(v["version"] for v in made) == list(range(1, 31))
        outcomes, elapsed = await _race([lambda c=c, n=n: c.promote(f"{MODEL}@{n}", reason=f"race {n}")
                                         for n, c in enumerate(clients, 1)])
        errors = [o for o in outcomes if isinstance(o, ModelregError)]
        assert not errors, [f"{e.code}: {e.message}" for e in errors]
        print(f"\n30 promotions through two daemons in {elapsed:.2f} s")

        # Each promotion archived the one before it: one production, 29 archived, on both daemons.
        for client in clients[:2]:
            stages = {v["version"]: v["stage"] async for v in client.iter_versions(MODEL)}
            assert sorted(stages.values()) == ["archived"] * 29 + ["production"], stages
        winner = (await clients[0].resolve(f"{MODEL}@production"))["version"]
        assert (await clients[1].resolve(f"{MODEL}@production"))["version"] == winner
        assert sorted(m for o in outcomes for m in o["archived"]) == sorted(set(range(1, 31)) - {winner})

    for daemon in (cluster.a, cluster.b):
        shown = _cli(daemon, "audit", "verify", "--json")
        assert shown.returncode == 0, shown
        verdict = json.loads(shown.stdout)
        assert verdict["ok"] is True and verdict["checked"] >= 30 + 30 * 2, verdict
