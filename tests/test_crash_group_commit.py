"""kill -9 while 16 clients register through group commits (issue 9, acceptance 3).

Every registration that got its 201 must be there, whole, after a restart: group commit
acknowledges a write only once its group is durable. Invalid registrations (a parent that
does not exist) are mixed in: each fails alone, inside a group with valid ones, and never
takes the others down with it.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import team_backend
from daemon_process import start_daemon
from modelreg.shared.client import Client
from modelreg.shared.errors import ModelregError, NotFound

CLIENTS = 16
ACKS_BEFORE_KILL = 240


async def _hammer(url: str, token: str, files: list[dict], seed: int):
    rng = random.Random(seed)
    acked: list[tuple[str, int, float, str]] = []
    refused: list[str] = []
    unexpected: list[str] = []
    killed = asyncio.Event()

    async def client(k: int) -> None:
        async with Client(url=url, token=token) as c:
            i = 0
            while not killed.is_set():
                i += 1
                model, auc, tag = f"crash-{k % 4}", round(rng.random(), 6), f"{k}-{i}"
                invalid = rng.random() < 0.15
                try:
                    out = await c.register(model, files=files, metrics={"auc": auc}, params={"who": tag},
                                           parent="ghost-model@1" if invalid else None)
                except NotFound as exc:
                    if not invalid:
                        unexpected.append(f"{tag}: {exc.message}")
                    refused.append(tag)
                    continue
                except (ModelregError, OSError, asyncio.TimeoutError) as exc:
                    if not killed.is_set():
                        unexpected.append(f"{tag}: {type(exc).__name__}: {exc}")
                    return
                except Exception as exc:  # noqa: BLE001 - aiohttp's connection errors once the daemon is gone
                    if not killed.is_set():
                        unexpected.append(f"{tag}: {type(exc).__name__}: {exc}")
                    return
                if invalid:
                    unexpected.append(f"{tag}: a registration with a missing parent was accepted")
                acked.append((model, out["version"]["version"], auc, tag))

    return acked, refused, unexpected, killed, client


def test_kill9_mid_group_commits_keeps_every_acknowledged_registration(home: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("MODELREG_CRASH_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (MODELREG_CRASH_SEED={seed} replays the same mix)")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(2048))
    d = start_daemon(home)

    async def run() -> tuple[list, list, list, str]:
        async with Client(url=d.url, token=d.token) as c:
            up = await c.upload_blob(weights)
        files = [{"path": "weights.bin", "sha256": up["sha256"], "size": up["size"]}]
        acked, refused, unexpected, killed, client = await _hammer(d.url, d.token, files, seed)
        tasks = [asyncio.create_task(client(k)) for k in range(CLIENTS)]
        deadline = asyncio.get_running_loop().time() + 120
        while len(acked) < ACKS_BEFORE_KILL and not unexpected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        async with Client(url=d.url, token=d.token) as c:
            store = (await c.request("GET", "/v1/status"))["store"]
        killed.set()
        await asyncio.to_thread(d.kill9)  # mid-stream: 16 clients have requests in flight
        assert store["writes"] >= len(acked), store
        if not team_backend.team():  # the daemon's group commit is SQLite's; PostgreSQL commits each write
            # Concurrent registrations shared commits (fsyncs): that is group commit at work.
            assert store["commits"] < store["writes"], store
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        return acked, refused, unexpected, up["sha256"]

    try:
        acked, refused, unexpected, sha256 = asyncio.run(run())
    finally:
        d.stop()
    assert unexpected == []
    assert len(acked) >= ACKS_BEFORE_KILL, "the clients did not get far enough before the deadline"
    assert refused, "the mix must include invalid registrations"

    d2 = start_daemon(home)
    try:
        async def check() -> None:
            async with Client(url=d2.url, token=d2.token) as c:
                for model, number, auc, tag in acked:
                    v = await c.version(f"{model}@{number}")
                    assert v["status"] == "ready", f"{model}@{number} acknowledged but {v['status']}"
                    assert v["metrics"] == {"auc": auc} and v["params"] == {"who": tag}
                    assert [f["sha256"] for f in v["files"]] == [sha256]
                numbers = {}
                for model, number, _, _ in acked:
                    numbers.setdefault(model, set()).add(number)
                for model, seen in numbers.items():
                    page = await c.versions(model, limit=1000)
                    stored = {v["version"] for v in page["items"]}
                    assert seen <= stored
                    assert all(v["status"] != "pending" for v in page["items"])
                verdict = await c.request("POST", "/v1/audit/verify")
                assert verdict["ok"] is True, verdict

        asyncio.run(check())
    finally:
        d2.stop()
