"""Health recovers (issue 13): daemons that lose their PostgreSQL keep answering GET /v1/health
(503 degraded, with the reason), and come back by themselves when it returns: health turns ok,
writes work, and events fan out again to a stream opened before the outage."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_support import MODEL, Cluster, health, register, start_cluster
from daemon_process import daemon_env
from pg_server import PgServer, find_bindir
from waiting import wait_until


@pytest.fixture
async def own_server() -> AsyncIterator[PgServer]:
    """A PostgreSQL server of this test's own, to stop and start (not the session's)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql")
    server = PgServer(bindir)
    await asyncio.to_thread(server.start)
    yield server
    server.stop()


@pytest.fixture
async def outage_cluster(own_server: PgServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    c = await asyncio.to_thread(start_cluster, tmp_path, {"MODELREG_DATABASE": await own_server.create_database()})
    yield c
    c.stop()


def _degraded(daemon) -> dict | None:  # noqa: ANN001
    code, body = health(daemon)
    return body if code == 503 else None


def _ok(daemon) -> dict | None:  # noqa: ANN001
    code, body = health(daemon)
    return body if code == 200 else None


async def test_health_degrades_while_postgres_is_down_and_recovers_by_itself(own_server: PgServer,
                                                                              outage_cluster: Cluster):
    cluster = outage_cluster
    async with cluster.clients(1) as (a, b):
        await register(a, cluster.root, 1)
        await register(a, cluster.root, 2)
        for daemon in (cluster.a, cluster.b):
            assert health(daemon)[0] == 200 and health(daemon)[1]["status"] == "ok"
        received: asyncio.Queue[dict] = asyncio.Queue()
        start = (await b.status())["last_event"]

        async def follow() -> None:
            async for event in b.stream_events(after=start):
                received.put_nowait(event)

        follower = asyncio.create_task(follow())
        try:
            await b.promote(f"{MODEL}@1", reason="before the outage")
            assert (await asyncio.wait_for(received.get(), 10))["kind"] == "stage.changed"

            await asyncio.to_thread(own_server.halt)
            down = time.monotonic()
            for daemon in (cluster.a, cluster.b):
                body = await asyncio.to_thread(wait_until, lambda d=daemon: _degraded(d), 15,
                                               f"{daemon.home.name}'s health to degrade")
                assert body["status"] == "degraded" and body["reason"].startswith("database: PostgreSQL: "), body
                assert f"127.0.0.1:{own_server.port}/" in body["reason"] and "Traceback" not in body["reason"]
            print(f"\nhealth while PostgreSQL is down: {body['reason']}")

            # The CLI says what is wrong in one line, with the unavailable exit code.
            shown = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "modelreg.tui.cli", "models"], capture_output=True,
                text=True, env=daemon_env(cluster.a.home), timeout=120, stdin=subprocess.DEVNULL)
            assert shown.returncode == 5, shown
            assert "PostgreSQL" in shown.stderr and "Traceback" not in shown.stderr
            assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr

            await asyncio.to_thread(own_server.resume)
            up = time.monotonic()
            for daemon in (cluster.a, cluster.b):
                await asyncio.to_thread(wait_until, lambda d=daemon: _ok(d), 30,
                                        f"{daemon.home.name}'s health to recover")
            print(f"down {up - down:.1f} s; both healthy {time.monotonic() - up:.1f} s after PostgreSQL came back")

            # Writes work again, and B's LISTEN connection came back: A's promotion reaches the
            # stream that B kept open through the outage.
            await a.promote(f"{MODEL}@2", reason="after the outage")
            event = await asyncio.wait_for(_next(received, "stage.changed", 2), 20)
            assert event["data"]["to"] == "production"
            for client in (a, b):
                assert (await client.status())["events"]["listening"] is True
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
    for daemon in (cluster.a, cluster.b):
        assert daemon.proc.poll() is None  # no restart: the same processes
        log = (daemon.home / "test-daemon.log").read_text()
        assert "reconnecting" in log or "listening for other daemons" in log


async def _next(received: asyncio.Queue[dict], kind: str, version: int) -> dict:
    while True:
        event = await received.get()
        if event["kind"] == kind and event["version"] == version:
            return event
