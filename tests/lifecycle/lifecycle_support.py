"""Helpers shared by the lifecycle tests (a module of its own: test files import it by name)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

import team_backend
from modelreg.shared.client import Client

MODEL = "fraud"


def weights_for(number: int, size: int = 64 * 1024) -> bytes:
    """Bytes that only version ``number`` has, so a reader can tell versions apart."""
    seed = hashlib.sha256(f"weights-{number}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def write_version_folder(folder: Path, number: int, extra: dict[str, bytes] | None = None) -> Path:
    """A model folder: ``version.txt`` says which version it is, ``weights.bin`` agrees."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "version.txt").write_text(f"{number}\n")
    (folder / "weights.bin").write_bytes(weights_for(number))
    for rel, data in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


class Versions:
    """Registers versions of ``fraud`` whose files carry their own number."""

    def __init__(self, client: Client, root: Path, model: str = MODEL) -> None:
        self.client, self.root, self.model = client, root, model

    async def add(self, number: int, *, extra: dict[str, bytes] | None = None, **metrics: float) -> dict[str, Any]:
        folder = write_version_folder(self.root / f"v{number}", number, extra)
        out = await self.client.register(self.model, path=folder, wait=True, metrics=metrics or None)
        v = out["version"]
        assert (v["version"], v["status"]) == (number, "ready"), v
        return v

    async def stages(self) -> dict[int, str]:
        """Every version's stage, as the API reports it."""
        return {v["version"]: v["stage"] async for v in self.client.iter_versions(self.model)}


def connect_db(home: Path) -> Any:
    """A second connection to the daemon's registry (SQLite's file, or its PostgreSQL database)."""
    return team_backend.connect(home)


# What either database raises when a constraint refuses a write made behind the daemon's back.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


def alive(pid: int) -> bool:
    """Whether ``pid`` is still a running process (a zombie waiting to be reaped is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)
