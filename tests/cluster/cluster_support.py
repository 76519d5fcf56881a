"""Helpers of the two-daemon tests (tests/cluster): the pair, their clients, version folders."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon_process import DaemonProcess, start_daemon
from modelreg.shared.client import Client
from modelreg.shared.sync_client import SyncClient

MODEL = "fraud"


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    a: DaemonProcess
    b: DaemonProcess

    @asynccontextmanager
    async def clients(self, n: int = 1, actor: str = "tester") -> AsyncIterator[list[Client]]:
        """``n`` clients of each daemon, alternating: a, b, a, b …"""
        clients = [Client(url=d.url, token=d.token, actor=f"{actor}-{i}")
                   for i in range(n) for d in (self.a, self.b)]
        try:
            yield clients
        finally:
            await asyncio.gather(*(c.close() for c in clients))

    def sync(self, daemon: DaemonProcess) -> SyncClient:
        """A blocking client of one daemon: for polling it with ``waiting.wait_until``."""
        return SyncClient(url=daemon.url, token=daemon.token, actor="watcher")

    def stop(self) -> None:
        for d in (self.a, self.b):
            d.stop()


def start_cluster(root: Path, env: dict[str, str]) -> Cluster:
    a = start_daemon(root / "a", env=env, timeout=60)
    try:
        b = start_daemon(root / "b", env=env, timeout=60)
    except BaseException:
        a.stop()
        raise
    return Cluster(root, env, a, b)


def version_folder(root: Path, n: int) -> Path:
    """A model folder whose weights only version ``n`` has."""
    folder = root / "src" / f"v{n}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_bytes(f"weights of candidate {n}\n".encode() * 512)
    (folder / "version.txt").write_text(f"{n}\n")
    return folder


async def register(client: Client, root: Path, n: int) -> dict[str, Any]:
    """Register candidate ``n`` (its own files) and wait until it is ready; the version view."""
    out = await client.register(MODEL, path=version_folder(root, n), wait=True)
    assert out["version"]["status"] == "ready", out
    return out["version"]


def health(daemon: DaemonProcess) -> tuple[int, dict[str, Any]]:
    """GET /v1/health as a load balancer sees it: the status code and the JSON body."""
    request = urllib.request.Request(daemon.url + "/v1/health", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
