"""Start-up: recovery from an interrupted registration, temp-file cleanup, one daemon per home."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

import team_backend
from modelreg.daemon.artifacts.blobs import BlobStore
from modelreg.daemon.store.sqlite.engine import SchemaTooNew
from modelreg.daemon.keys import POOL
from modelreg.shared.errors import Conflict
from registry_harness import Registry, StartRegistry, blob_files, blob_path, sha256_of


def _leave_pending_version(home: Path, model: str) -> int:
    """What a kill -9 between the two registration transactions leaves: a pending row, its number taken."""
    db = team_backend.connect(home)
    try:
        mid, number = db.execute("SELECT id, next_version FROM models WHERE name = ?", (model,)).fetchone()
        db.execute("UPDATE models SET next_version = next_version + 1 WHERE id = ?", (mid,))
        db.execute("INSERT INTO versions (model_id, number, status, source, created_at, created_by, updated_at) "
                   "VALUES (?, ?, 'pending', 'cli', ?, 'someone', ?)", (mid, number, time.time(), time.time()))
    finally:
        db.close()
    return number


async def test_pending_version_becomes_failed_and_temp_files_go(start_registry: StartRegistry, home: Path,
                                                               model_file: Path) -> None:
    first = await start_registry(home)
    await first.client().register("fraud", path=model_file, wait=True)
    await first.stop()

    number = _leave_pending_version(home, "fraud")
    tmp = home / "blobs" / "tmp"
    for name in ("3f2a9c", "half-written-upload"):
        (tmp / name).write_bytes(os.urandom(4096))

    second = await start_registry(home)
    c = second.client()
    assert list(tmp.iterdir()) == [], "start-up removes interrupted writes"
    broken = await c.version(f"fraud@{number}")
    assert broken["status"] == "failed" and "interrupted" in broken["status_message"]
    assert broken["files"] == []
    assert (await c.version("fraud@latest"))["version"] == 1
    failed = [e for e in (await c.events(model="fraud"))["items"] if e["kind"] == "version.failed"]
    assert [e["version"] for e in failed] == [number]
    assert (await c.status())["pending"] == 0

    # The same register command succeeds, with a new number: numbers are never reused.
    again = (await c.register("fraud", path=model_file, wait=True))["version"]
    assert again["version"] == number + 1 and again["status"] == "ready"
    assert again["files"][0]["sha256"] == sha256_of(model_file)
    assert (await c.verify(wait=True))["result"]["ok"] is True


async def test_stopping_mid_registration_leaves_no_pending_or_broken_version(
        start_registry: StartRegistry, home: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon stops while a file is being stored (a slow disk, simulated): after a restart
    nothing is pending, nothing ready lacks its bytes, no temp file remains, and registering works."""
    storing, release = threading.Event(), threading.Event()
    real_store = BlobStore.store_file

    def slow_store(self, src, **kwargs):
        storing.set()
        release.wait(10)
        return real_store(self, src, **kwargs)

    monkeypatch.setattr(BlobStore, "store_file", slow_store)
    first = await start_registry(home)
    out = await first.client().register("fraud", path=model_file)
    assert out["version"]["status"] == "pending"
    assert await asyncio.to_thread(storing.wait, 10)
    pool = first.app[POOL]
    await first.stop()
    release.set()
    await asyncio.to_thread(pool.shutdown, True)  # the slow write finishes (or not) before the restart
    monkeypatch.setattr(BlobStore, "store_file", real_store)

    second = await start_registry(home)
    assert list((home / "blobs" / "tmp").iterdir()) == []
    c = second.client()
    v1 = await c.version("fraud@1")
    assert v1["status"] == "failed" and v1["status_message"]
    db = team_backend.connect(home)
    assert tuple(db.execute("SELECT count(*) FROM versions WHERE status = 'pending'").fetchone()) == (0,)
    for (sha,) in db.execute("SELECT m.sha256 FROM manifest m JOIN versions v ON v.id = m.version_id "
                             "WHERE v.status = 'ready'").fetchall():
        assert blob_path(home, sha).is_file()
    db.close()
    again = (await c.register("fraud", path=model_file, wait=True))["version"]
    assert again["version"] == 2 and again["status"] == "ready"
    assert blob_path(home, again["files"][0]["sha256"]).read_bytes() == model_file.read_bytes()


async def test_second_daemon_on_the_same_home_refuses_to_start(start_registry: StartRegistry, home: Path,
                                                               model_file: Path) -> None:
    first = await start_registry(home)
    await first.client().register("fraud", path=model_file, wait=True)
    token = first.token

    with pytest.raises(Conflict) as refused:
        await start_registry(home)
    message = refused.value.message
    assert "already running" in message and str(home) in message and str(os.getpid()) in message

    # The refused start did not disturb the running daemon or its home.
    assert first.token == token
    assert (await first.client().version("fraud@1"))["status"] == "ready"
    assert len(blob_files(home)) == 1

    await first.stop()
    third = await start_registry(home)
    assert (await third.client().version("fraud@1"))["status"] == "ready"


async def test_database_from_a_newer_modelreg_is_refused(start_registry: StartRegistry, home: Path) -> None:
    first = await start_registry(home)
    await first.stop()
    db = team_backend.connect(home)
    if team_backend.team():  # PostgreSQL records its schema in a table, SQLite in user_version
        db.execute("INSERT INTO schema_migrations VALUES (999, 'from a newer modelreg', 0)")
    else:
        db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(SchemaTooNew) as refused:
        await start_registry(home)
    assert "newer" in refused.value.message and "999" in refused.value.message


async def test_restart_keeps_everything(start_registry: StartRegistry, home: Path, model_file: Path) -> None:
    first = await start_registry(home)
    before = (await first.client().register("fraud", path=model_file, wait=True, metrics={"auc": 0.9},
                                            datasets=["txns@2026-11"]))["version"]
    token = first.token
    await first.stop()
    second: Registry = await start_registry(home)
    assert second.token == token
    after = await second.client().version("fraud@1")
    assert {k: after[k] for k in ("files", "metrics", "lineage", "content_digest")} == {
        k: before[k] for k in ("files", "metrics", "lineage", "content_digest")}
    audit = await second.call("POST", "/v1/audit/verify")
    assert audit.status == 200 and audit.data["ok"] is True
