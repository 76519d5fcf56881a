"""Helpers for the watch-lease tests: daemons started on one registry, seen through their API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from daemon_process import DaemonProcess, start_daemon
from modelreg.shared.errors import NotFound
from modelreg.shared.sync_client import SyncClient
from waiting import wait_until

LEASE = 3.0  # MODELREG_WATCH_LEASE in the cluster fixture
BIG = int(os.environ.get("MODELREG_TEST_BIG_FILE", 768 * 1024**2))  # long enough to be killed mid-way


class Node:
    """One daemon of the cluster and a client of its API."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.api = SyncClient(url=daemon.url, token=daemon.token, actor="tester@leases")

    def watch(self, path: Path) -> dict[str, Any]:
        """The watch of ``path`` as this daemon lists it."""
        return next(w for w in self.api.watches() if w["path"] == str(path.resolve()))

    def holds(self, path: Path) -> bool:
        return self.watch(path)["active"]

    def instance(self) -> str:
        """This daemon's instance id: it holds a watch it runs (it names itself as the owner)."""
        held = [w["owner"] for w in self.api.watches() if w["active"]]
        assert held, "the daemon runs no watch: its instance id cannot be read from one"
        return held[0]

    def events(self, kind: str, after: int = 0) -> list[dict[str, Any]]:
        return self.api.events(after=after, limit=1000, kind=kind)["items"]

    def versions(self, model: str) -> list[dict[str, Any]]:
        return self.api.versions(model)["items"]

    def close(self) -> None:
        self.api.close()


class Cluster:
    """Daemons started on one registry (``env``: the database, the bucket, the lease timing)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.nodes: list[Node] = []
        self.inbox = root / "inbox"  # the drop folder, visible to every daemon (this machine)
        self.inbox.mkdir()

    def start(self, name: str, **extra: str) -> Node:
        node = Node(start_daemon(self.root / name, env={**self.env, **extra}))
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.close()
            if node.daemon.proc.poll() is None:
                node.daemon.stop()


def drop(folder: Path, name: str, seed: int) -> Path:
    """A small real safetensors model written as a temp name, then renamed in (taken at once)."""
    rng = np.random.default_rng(seed)
    part = folder / f"{name}.part"
    save_file({"w": rng.standard_normal((16, 16)).astype(np.float32)}, str(part))
    os.rename(part, folder / name)
    return folder / name


def ready(node: Node, model: str, timeout: float) -> dict[str, Any]:
    """The model's one version, once it is ready (through ``node``)."""
    def one() -> dict[str, Any] | None:
        try:
            items = node.versions(model)
        except NotFound:  # the model does not exist yet
            return None
        return items[0] if len(items) == 1 and items[0]["status"] == "ready" else None
    return wait_until(one, timeout, f"{model}@1 to be ready")


__all__ = ["BIG", "Cluster", "LEASE", "Node", "drop", "ready", "wait_until"]
