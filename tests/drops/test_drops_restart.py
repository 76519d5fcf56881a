"""Drops and daemon restarts: made while it was down, and a kill -9 mid-ingest (issue 4, acceptance 3)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import team_backend
from daemon_process import start_daemon
from drops_support import Registry, blob_path, drop_bytes, sha256_of, wait_until, write_safetensors

BIG_DROP_BYTES = drop_bytes(512 * 1024 * 1024)
BIG_FILES = 4


def test_drops_made_while_the_daemon_was_stopped_are_registered_when_it_starts(daemon, reg, inbox, home):
    reg.watch(inbox, settle=1.0)
    reg.close()
    daemon.stop()

    params = write_safetensors(inbox / "offline-a.safetensors", 1)
    (inbox / "offline-b").mkdir()
    write_safetensors(inbox / "offline-b" / "weights.safetensors", 2)
    (inbox / "offline-b" / "tokenizer.json").write_text('{"vocab": {}}')
    (inbox / "still-writing.part").write_bytes(b"half")  # a temporary name: never taken

    d = start_daemon(home)
    r = Registry(d)
    try:
        r.wait_event("drop.registered", timeout=15, count=2)
        assert [v["version"] for v in r.versions("offline-a")] == [1]
        assert r.version("offline-a@1")["facts"]["parameter_count"] == params
        assert sorted(f["path"] for f in r.version("offline-b@1")["files"]) == ["tokenizer.json", "weights.safetensors"]
        assert sorted(os.listdir(inbox)) == ["still-writing.part"]
        assert r.model_names() == ["offline-a", "offline-b"]
    finally:
        r.close()
        d.stop()


def big_folder(folder: Path, total: int, files: int) -> dict[str, str]:
    """``files`` files of random-ish bytes adding up to ``total``; returns {name: sha256}."""
    folder.mkdir(parents=True)
    block = os.urandom(4 * 1024 * 1024)
    each = total // files
    for i in range(files):
        with open(folder / f"shard-{i}.bin", "wb") as f:
            f.write(b"raw weights %d\n" % i)
            for _ in range(each // len(block)):
                f.write(block)
    return {p.name: sha256_of(p) for p in folder.iterdir()}


def journal(home: Path) -> tuple[list[tuple[str, str]], int]:
    """(entry, state) rows of the ingest journal and the number of versions, read from the database."""
    with team_backend.connect(home) as db:
        rows = db.execute("SELECT entry, state FROM ingest_journal ORDER BY id").fetchall()
        versions = db.execute("SELECT count(*) FROM versions").fetchone()[0]
    return rows, versions


@pytest.mark.slow
def test_kill9_mid_ingest_then_restart_registers_the_drop_exactly_once(daemon, reg, inbox, home, tmp_path):
    expected = big_folder(tmp_path / "src" / "big", BIG_DROP_BYTES, BIG_FILES)
    reg.watch(inbox, settle=1.0, mode="move")
    reg.close()

    os.rename(tmp_path / "src" / "big", inbox / "big")  # a finished folder moved in
    # Kill as soon as the ingest has started storing the drop (a hardlink appears in blobs/tmp).
    tmp = home / "blobs" / "tmp"
    wait_until(lambda: any(tmp.iterdir()), timeout=20, what="the ingest to start storing", step=0.002)
    daemon.kill9()

    rows, versions = journal(home)
    assert (rows, versions) == ([("big", "taken")], 0), "the kill must land in the middle of the ingest"
    assert sorted(os.listdir(inbox / "big")) == sorted(expected), "nothing lost from the folder"

    d = start_daemon(home)
    r = Registry(d)
    try:
        event = r.entry_event("drop.registered", "big", timeout=60)
        time.sleep(1.5)  # long enough for a second registration to show up, were there one
        assert [v["version"] for v in r.versions("big")] == [1], "exactly one version"
        assert len(r.events("drop.registered")) == 1 and event["version"] == 1
        v = r.version("big@1")
        assert {f["path"]: f["sha256"] for f in v["files"]} == expected
        for sha in expected.values():
            assert sha256_of(blob_path(home, sha)) == sha, "the stored files are intact"
        assert not (inbox / "big").exists(), "registered, then gone from the folder"
        assert not (inbox / ".failed").exists()
        assert list(tmp.iterdir()) == [], "no half-written blob left behind"
        assert journal(home)[0] == [("big", "done")]
    finally:
        r.close()
        d.stop()
