"""Registrations raced from 32 clients on one model (issue 2, acceptance 3)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from modelreg.shared.client import Client
from registry_harness import Registry, blob_files, write_safetensors

N = 32


def _assert_all_ready_and_gap_free(results: list[dict], model: str) -> None:
    numbers = sorted(r["version"]["version"] for r in results)
    assert numbers == list(range(1, N + 1))
    assert all(r["version"]["model"] == model for r in results)


async def _assert_no_lock_errors(registry: Registry, model: str) -> None:
    c = registry.client()
    page = await c.versions(model, limit=100)
    assert page["total"] == N
    assert sorted(v["version"] for v in page["items"]) == list(range(1, N + 1))
    assert {v["status"] for v in page["items"]} == {"ready"}
    assert not [v for v in page["items"] if "locked" in (v["status_message"] or "")]
    events = (await c.events(model=model, limit=1000))["items"]
    assert sorted(e["version"] for e in events if e["kind"] == "version.ready") == list(range(1, N + 1))


async def test_32_clients_registering_paths_get_32_distinct_numbers(registry: Registry, src: Path) -> None:
    # Half the files share their bytes, so the blob store's dedup races too.
    paths = []
    for i in range(N):
        p = src / f"m{i}" / "model.safetensors"
        write_safetensors(p, seed=i % (N // 2))
        paths.append(p)
    clients = [Client(url=registry.url, token=registry.token, home=registry.home) for _ in range(N)]
    try:
        results = await asyncio.gather(*(c.register("raced", path=p, wait=True, metrics={"auc": i / 100})
                                         for i, (c, p) in enumerate(zip(clients, paths))))
    finally:
        await asyncio.gather(*(c.close() for c in clients))

    _assert_all_ready_and_gap_free(results, "raced")
    assert all(r["version"]["status"] == "ready" for r in results)
    await _assert_no_lock_errors(registry, "raced")
    assert len(blob_files(registry.home)) == N // 2


async def test_32_clients_uploading_and_registering_blobs(registry: Registry, src: Path) -> None:
    shared = src / "shared.safetensors"
    write_safetensors(shared, seed=99)
    clients = [Client(url=registry.url, token=registry.token, home=registry.home) for _ in range(N)]

    async def one(i: int, c: Client) -> dict:
        own = src / f"own{i}.bin"
        own.write_bytes(f"client {i}\n".encode() * 100)
        blobs = [await c.upload_blob(shared), await c.upload_blob(own)]
        files = [{"path": "model.safetensors", **{k: blobs[0][k] for k in ("sha256", "size")}},
                 {"path": "notes.txt", **{k: blobs[1][k] for k in ("sha256", "size")}}]
        return await c.register("uploaded", files=files)

    try:
        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
    finally:
        await asyncio.gather(*(c.close() for c in clients))

    _assert_all_ready_and_gap_free(results, "uploaded")
    await _assert_no_lock_errors(registry, "uploaded")
    assert len(blob_files(registry.home)) == N + 1


@pytest.mark.sqlite_only(reason="SQLite's one write lock, taken in the sqlite3 shell; PostgreSQL has no database-wide write lock")
async def test_an_outside_writer_holding_the_lock_only_delays_registrations(registry: Registry, src: Path) -> None:
    """Someone in the sqlite3 shell holds the write lock for a moment: clients wait, never see 'locked'."""
    paths = []
    for i in range(N):
        p = src / f"x{i}.safetensors"
        write_safetensors(p, seed=1000 + i)
        paths.append(p)
    holding, release = threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        conn = sqlite3.connect(registry.db_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        release.wait(5)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    assert await asyncio.to_thread(holding.wait, 5)
    clients = [Client(url=registry.url, token=registry.token, home=registry.home) for _ in range(N)]
    try:
        racing = asyncio.gather(*(c.register("held", path=p, wait=True) for c, p in zip(clients, paths)))
        await asyncio.sleep(0.5)
        release.set()
        results = await racing
    finally:
        release.set()
        await asyncio.to_thread(holder.join)
        await asyncio.gather(*(c.close() for c in clients))

    _assert_all_ready_and_gap_free(results, "held")
    await _assert_no_lock_errors(registry, "held")
