"""Backups (issue 11, acceptance 5): `modelreg backup` taken while clients keep registering
restores into a registry that passes verify and audit verify and holds, byte for byte, every
version acknowledged before the backup began; restore never overwrites; a bad source fails
the backup and leaves nothing that looks like one."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon_process import daemon_env, start_daemon
from modelreg.daemon.store.sqlite import maintenance
from modelreg.daemon.store.sqlite.migrations import LATEST
from modelreg.shared.sync_client import SyncClient
from rel_home_support import FIXTURE_SCHEMA, as_json, copy_fixture, schema_of

pytestmark = pytest.mark.sqlite_only(reason="backup and restore copy the home's SQLite registry.db (a PostgreSQL "
                                            "database is backed up with its own tools)")

CLIENTS = 3


@dataclass
class Ack:
    ref: str
    sha256: str
    content: bytes
    at: float  # monotonic time the daemon's answer arrived


@dataclass
class Load:
    """Clients registering distinct small files in a loop until stopped; what was acknowledged."""

    url: str
    token: str
    folder: Path
    acks: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client_no: int) -> None:
        with SyncClient(url=self.url, token=self.token) as c:
            n = 0
            while not self.stop.is_set():
                n += 1
                content = f"client {client_no} version {n} ".encode() * 50
                src = self.folder / f"c{client_no}-{n}.bin"
                src.write_bytes(content)
                try:
                    v = c.register(f"load-{client_no}", path=src, wait=True, metrics={"auc": 0.5 + n / 1e6})["version"]
                except Exception as exc:  # noqa: BLE001 - every failure is a test failure, reported below
                    self.errors.append(f"client {client_no}: {exc}")
                    return
                with self.lock:
                    self.acks.append(Ack(f"load-{client_no}@{v['version']}", hashlib.sha256(content).hexdigest(),
                                         content, time.monotonic()))

    def acked(self) -> list[Ack]:
        with self.lock:
            return list(self.acks)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelreg.tui.cli", *args], capture_output=True, text=True,
                          env=daemon_env(home), timeout=300, stdin=subprocess.DEVNULL)


def test_backup_during_load_restores_every_acknowledged_version(tmp_path: Path):
    home, dest, restored = tmp_path / "home", tmp_path / "backup", tmp_path / "restored"
    daemon = start_daemon(home)
    load = Load(daemon.url, daemon.token, tmp_path / "src")
    load.folder.mkdir()
    threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(CLIENTS)]
    try:
        # One version in production, so the restore has a serving link to rebuild.
        first = load.folder / "served.bin"
        first.write_bytes(b"served weights")
        with SyncClient(url=daemon.url, token=daemon.token) as c:
            c.register("served", path=first, wait=True)
            c.promote("served@1", reason="before the load")
        for t in threads:
            t.start()
        wait_for(lambda: len(load.acked()) >= 30 or load.errors, 120, "30 acknowledged registrations")

        before = load.acked()  # everything acknowledged before the backup starts
        started = time.monotonic()
        backup = cli(home, "backup", str(dest), "--json")
        finished = time.monotonic()
        during = [a for a in load.acked() if started < a.at < finished]
        wait_for(lambda: len(load.acked()) > len(before) + CLIENTS or load.errors, 120,
                 "registrations to go on after the backup")
    finally:
        load.stop.set()
        for t in threads:
            t.join(60)
        daemon.stop()
    assert load.errors == []
    report = as_json(backup)
    print(f"\nbackup: {len(before)} versions acknowledged before it, {len(during)} while it ran "
          f"({finished - started:.2f} s), {report['ready_versions']} ready versions in it")
    assert report["ready_versions"] >= len(before) + 1  # + served@1
    assert json.loads((dest / "backup.json").read_text())["blobs"] == report["blobs"]
    assert not (dest / "token").exists() and not report["token"]  # only with --include-token

    result = cli(restored, "restore", str(dest), "--home", str(restored), "--json")
    r = as_json(result)
    assert r["audit"]["ok"] and r["serving_links"] == 1 and r["database_problems"] == []
    # The restore rebuilt the serving link before any daemon ran on the new home.
    assert (restored / "serving" / "served" / "production" / "served.bin").read_bytes() == b"served weights"

    new = start_daemon(restored)
    try:
        assert as_json(cli(restored, "verify", "--json"))["ok"]
        assert as_json(cli(restored, "audit", "verify", "--json"))["ok"]
        with SyncClient(url=new.url, token=new.token) as c:
            for ack in before:
                v = c.version(ack.ref)
                assert v["status"] == "ready", ack.ref
                [f] = v["files"]
                assert f["sha256"] == ack.sha256, ack.ref
                blob = restored / "blobs" / "sha256" / ack.sha256[:2] / ack.sha256[2:]
                assert blob.read_bytes() == ack.content, ack.ref
            # One downloaded through the restored daemon, as a user would fetch it.
            got = tmp_path / "downloaded.bin"
            c.download(before[-1].ref, f["path"], got)
            assert got.read_bytes() == before[-1].content
            assert c.resolve("served@production")["version"] == 1
    finally:
        new.stop()


def test_backup_without_a_daemon_of_an_older_registry_restores_migrated(tmp_path: Path):
    home, dest, restored = copy_fixture(tmp_path / "home"), tmp_path / "b", tmp_path / "r"
    (home / "token").write_text("old-admin-token\n")
    os.chmod(home / "token", 0o600)
    report = as_json(cli(home, "backup", str(dest), "--include-token", "--json"))
    assert report["schema"] == FIXTURE_SCHEMA and report["token"] and report["ready_versions"] == 5
    assert not (home / "daemon.json").exists()  # no daemon was started for it
    assert sorted(p.name for p in dest.iterdir()) == ["backup.json", "blobs", "registry.db", "token"]
    assert (dest / "token").stat().st_mode & 0o777 == 0o600
    assert schema_of(home / "registry.db")[0] == FIXTURE_SCHEMA  # the source is left as it was

    r = as_json(cli(restored, "restore", str(dest), "--home", str(restored), "--json"))
    assert (r["backup_schema"], r["schema"]) == (FIXTURE_SCHEMA, LATEST) and r["audit"]["ok"] and r["token"]
    assert (restored / "token").read_text() == "old-admin-token\n"
    assert (restored / "token").stat().st_mode & 0o777 == 0o600
    d = start_daemon(restored)
    try:
        assert d.token == "old-admin-token"
        with SyncClient(url=d.url, token=d.token) as c:
            assert c.verify(wait=True)["result"]["ok"]
            assert c.resolve("fraud@champion")["version"] == 2
    finally:
        d.stop()


def test_restore_never_overwrites_and_refuses_what_is_not_a_backup(tmp_path: Path):
    home, dest = copy_fixture(tmp_path / "home"), tmp_path / "b"
    as_json(cli(home, "backup", str(dest), "--json"))

    # Into a home that holds anything: refused, the home untouched.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "registry.db").write_bytes(b"someone's registry")
    result = cli(busy, "restore", str(dest), "--home", str(busy))
    assert result.returncode == 1 and "is not empty" in result.stderr and "registry.db" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["registry.db"]
    assert (busy / "registry.db").read_bytes() == b"someone's registry"

    # A backup into a folder that holds anything: refused the same way.
    result = cli(home, "backup", str(busy))
    assert result.returncode == 1 and "is not empty" in result.stderr

    # A blob of the backup that rotted is found on the way in: no half-restored home.
    blob = next(p for p in (dest / "blobs" / "sha256").rglob("*") if p.is_file())
    original = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(b"rotted" + original[6:])
    result = cli(tmp_path / "new", "restore", str(dest), "--home", str(tmp_path / "new"))
    assert result.returncode == 1 and "no longer matches its digest" in result.stderr
    assert not (tmp_path / "new").exists()
    blob.write_bytes(original)

    # A folder without backup.json (an interrupted backup has none) is not a backup.
    (dest / "backup.json").unlink()
    result = cli(tmp_path / "new", "restore", str(dest), "--home", str(tmp_path / "new"), "--json")
    assert result.returncode == 2
    assert "not a modelreg backup" in json.loads(result.stdout)["error"]["message"]
    assert not (tmp_path / "new").exists()


def test_a_corrupt_blob_fails_the_backup_and_leaves_no_backup(tmp_path: Path):
    home, dest = copy_fixture(tmp_path / "home"), tmp_path / "b"
    blob = next(p for p in (home / "blobs" / "sha256").rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_bytes(b"flipped" + blob.read_bytes()[7:])
    result = cli(home, "backup", str(dest))
    assert result.returncode == 1
    assert "no longer matches its digest" in result.stderr and "modelreg verify" in result.stderr
    assert not dest.exists()  # created by the backup, removed with everything in it


def test_the_database_copy_is_one_snapshot_however_many_steps(tmp_path: Path):
    """Commits from another connection between the backup's steps neither restart the copy nor
    get into it: the copy is the database as it was when the backup began."""
    db = copy_fixture(tmp_path / "home") / "registry.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE filler (x BLOB)")
        conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(1000),) for _ in range(3000)])
        blobs_before = conn.execute("SELECT count(*) FROM blobs").fetchone()[0]
    steps = []
    writer = sqlite3.connect(db, isolation_level=None)

    def between_steps(done: int, total: int) -> None:
        steps.append(done)
        # Without one pinned snapshot, each commit below restarts the copy, for ever.
        assert len(steps) < 100, f"the copy restarted (steps so far: {steps[:10]}…)"
        writer.execute("INSERT INTO filler VALUES (x'00')")
        writer.execute("INSERT INTO blobs VALUES (?, 1, 0)", (f"{len(steps):064x}",))

    try:
        snap = maintenance.copy_database(db, tmp_path / "copy.db", progress=between_steps)
    finally:
        writer.close()
    assert len(steps) >= 3  # several steps, a commit after each
    assert steps == sorted(steps)  # never restarted from page one
    assert len(snap.blobs) == blobs_before
    with closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        assert copy.execute("SELECT count(*) FROM filler").fetchone()[0] == 3000
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with closing(sqlite3.connect(db)) as source:
        assert source.execute("SELECT count(*) FROM filler").fetchone()[0] == 3000 + len(steps)


def test_progress_is_lines_for_machines_and_a_bar_on_a_terminal(tmp_path: Path):
    home = copy_fixture(tmp_path / "home")
    r = subprocess.run([sys.executable, "-m", "modelreg.daemon.maintenance", "--progress", "backup", str(tmp_path / "b")],
                       capture_output=True, text=True, env=daemon_env(home), timeout=120, stdin=subprocess.DEVNULL)
    total = as_json(r)["bytes"]
    steps = [json.loads(line) for line in r.stderr.splitlines()]
    assert steps[0] == {"done": 0, "total": total} and steps[-1] == {"done": total, "total": total}
    assert [s["done"] for s in steps] == sorted(s["done"] for s in steps)

    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "modelreg.tui.cli", "backup", str(tmp_path / "b2")],
                            stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=daemon_env(home))
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert proc.wait(120) == 0
    text = seen.decode(errors="replace")
    assert "backing up" in text and f"{total}/{total} bytes" in text and "backed up" in text
    assert (tmp_path / "b2" / "backup.json").is_file()
