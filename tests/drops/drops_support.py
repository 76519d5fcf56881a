"""Helpers for the drop-folder tests (a module of its own: test files import it by name).

Everything here talks to a real daemon process over its HTTP API, or looks at real files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from modelreg.shared.errors import NotFound
from modelreg.shared.sync_client import SyncClient
from waiting import wait_until  # noqa: F401 (re-exported: the drops tests import it from here)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def blob_path(home: Path, sha256: str) -> Path:
    return home / "blobs" / "sha256" / sha256[:2] / sha256[2:]


def write_safetensors(path: Path, seed: int, shapes: dict[str, tuple[int, ...]] | None = None) -> int:
    """A real safetensors file (written by the safetensors library); returns its parameter count."""
    rng = np.random.default_rng(seed)
    tensors = {name: rng.standard_normal(shape).astype(np.float32)
               for name, shape in (shapes or {"w": (4, 8), "b": (8,)}).items()}
    save_file(tensors, str(path))
    return sum(int(np.prod(t.shape)) for t in tensors.values())


class Registry:
    """The daemon as a user's script sees it: versions, events and watches over the API."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.home: Path = daemon.home
        self.client = SyncClient(url=daemon.url, token=daemon.token, actor="tester@drops")

    def close(self) -> None:
        self.client.close()

    def watch(self, folder: Path, **options: Any) -> dict[str, Any]:
        return self.client.add_watch(folder, **options)

    def events(self, kind: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Every event (of ``kind``) after id ``after``, oldest first."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.client.events(after=after, limit=1000, kind=kind)
            out += page["items"]
            if len(page["items"]) < 1000:
                return out
            after = page["items"][-1]["id"]

    def last_event_id(self) -> int:
        return self.client.events(limit=1)["last_id"] or 0

    def wait_event(self, kind: str, timeout: float, after: int = 0, where: Callable[[dict], bool] = lambda e: True,
                   count: int = 1, step: float = 0.02) -> list[dict[str, Any]]:
        """Wait for ``count`` events of ``kind`` (after id ``after``) matching ``where``; returns them."""
        def found() -> list[dict[str, Any]] | None:
            hits = [e for e in self.events(kind, after) if where(e)]
            return hits if len(hits) >= count else None
        return wait_until(found, timeout, f"{count} {kind} event(s)", step)

    def entry_event(self, kind: str, entry: str, timeout: float, after: int = 0) -> dict[str, Any]:
        return self.wait_event(kind, timeout, after, lambda e: e["data"].get("entry") == entry)[0]

    def version(self, ref: str) -> dict[str, Any]:
        return self.client.version(ref)

    def versions(self, model: str) -> list[dict[str, Any]]:
        try:
            return list(self.client.iter_versions(model))
        except NotFound:
            return []

    def model_names(self) -> list[str]:
        return [m["name"] for m in self.client.all_models()]


def daemon_write_bytes(pid: int) -> int:
    """Bytes the process caused to be written to storage (``/proc/PID/io``, page-cache writes included)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/io has no write_bytes")


def drop_bytes(default: int) -> int:
    """Size of the big-file drops; ``MODELREG_TEST_DROP_BYTES`` raises it (e.g. 2 GB by hand)."""
    return int(os.environ.get("MODELREG_TEST_DROP_BYTES", default))
