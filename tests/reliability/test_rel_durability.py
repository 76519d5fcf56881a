"""Power-cut durability, checked on the running daemon (issue 11, "Power-cut durability").

An acknowledged write is on disk before its reply: the writer connection runs WAL with
``synchronous=FULL`` (the test reads what the LIVE connections hold, through GET /v1/status,
not what the code says). A move-mode source is deleted only after the commit that references
its blobs: the test freezes the daemon (SIGSTOP) the instant the kernel reports the source's
first deletion, and reads the registry from a connection of its own while nothing in the daemon
can run. The version must already be committed and ready, its blobs in place. Last, strace
shows the order of the syscalls that make it durable: the blob fsynced, renamed into place,
its folder fsynced, the WAL fsynced (the commit), and only then the drop unlinked. The WAL and
strace parts are SQLite's; on PostgreSQL the commit happens in the database server.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import team_backend

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS / "drops") not in sys.path:
    sys.path.insert(0, str(_TESTS / "drops"))
from drops_support import Registry, blob_path, sha256_of, wait_until, write_safetensors  # noqa: E402

IN_DELETE = 0x200  # a name unlinked or a folder removed in a watched folder (renames are not deletions)
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


@pytest.fixture
def reg(daemon):
    r = Registry(daemon)
    yield r
    r.close()


@pytest.mark.sqlite_only(reason="SQLite's WAL and synchronous=FULL on the daemon's own connections")
def test_the_live_connections_run_wal_with_synchronous_full_on_the_writer(reg, home):
    durability = reg.client.status()["store"]["durability"]
    writer = durability["writer"]
    assert writer["journal_mode"] == "wal" and writer["synchronous"] == "full", writer
    assert writer["foreign_keys"] and writer["busy_timeout_ms"] > 0 and not writer["query_only"]
    assert durability["readers"], "the daemon reads through connections of their own"
    for reader in durability["readers"]:
        assert reader["journal_mode"] == "wal" and reader["foreign_keys"] and reader["query_only"], reader
    # WAL is a property of the file too: any other connection finds it.
    outside = sqlite3.connect(f"file:{home / 'registry.db'}?mode=ro", uri=True)
    try:
        assert outside.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        outside.close()


class FreezeOnDelete:
    """Stops process ``pid`` (SIGSTOP) the instant anything in the watched folders is deleted,
    runs ``look(name)`` while it is stopped, then lets it go on (SIGCONT).

    inotify through libc: the event arrives as the unlink returns, before the daemon's next
    step; the frozen daemon cannot commit anything while ``look`` reads."""

    def __init__(self, pid: int, folders: list[Path], look: Callable[[str], Any]) -> None:
        self.pid, self.look = pid, look
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        for folder in folders:
            assert self.libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_DELETE) >= 0
        self.seen: list[tuple[str, Any]] = []  # (name deleted, what look() saw)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
            os.kill(self.pid, signal.SIGSTOP)
            try:
                _, _, _, length = _EVENT.unpack_from(data)
                name = data[_EVENT.size:_EVENT.size + length].rstrip(b"\0").decode()
                self.seen.append((name, self.look(name)))
            finally:
                os.kill(self.pid, signal.SIGCONT)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc
        finally:
            os.close(self.fd)

    def result(self, timeout: float) -> tuple[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"no deletion seen within {timeout:g}s"
        if self.error is not None:
            raise self.error
        return self.seen[0]


def committed_version(home: Path, model: str) -> dict[str, Any] | None:
    """The model's newest version as a separate connection reads the registry (committed rows only)."""
    db = team_backend.connect(home)
    try:
        row = db.execute("SELECT v.id, v.number, v.status FROM versions v JOIN models m ON m.id = v.model_id "
                         "WHERE m.name = ? ORDER BY v.number DESC LIMIT 1", (model,)).fetchone()
        if row is None:
            return None
        files = db.execute("SELECT path, sha256, size FROM manifest WHERE version_id = ?", (row[0],)).fetchall()
        return {"number": row[1], "status": row[2], "files": files,
                "blobs_present": all(blob_path(home, sha).is_file() for _, sha, _ in files)}
    finally:
        db.close()


def assert_committed_before_deleted(seen: tuple[str, Any], entry_files: dict[str, str], model: str) -> None:
    name, version = seen
    assert version is not None, f"{name} was deleted while no version of {model} was committed"
    assert version["status"] == "ready", f"{name} was deleted while {model}@{version['number']} was {version['status']}"
    assert {path: sha for path, sha, _ in version["files"]} == entry_files
    assert version["blobs_present"], "the committed version's blobs were in place"


def test_a_move_mode_drop_leaves_only_after_its_version_is_committed(daemon, reg, home, tmp_path):
    inbox = tmp_path / "inbox"  # the same filesystem as HOME: the blobs are hardlinks of the drop
    inbox.mkdir()
    reg.watch(inbox, mode="move", settle=0.3)
    stage = tmp_path / "stage" / "ranker"
    stage.mkdir(parents=True)
    write_safetensors(stage / "model.safetensors", 1, {"w": (256, 256)})
    (stage / "config.json").write_text('{"model_type": "bert"}')
    files = {rel: sha256_of(stage / rel) for rel in ("config.json", "model.safetensors")}
    pid = reg.client.status()["pid"]
    # A folder drop's files go before the folder: watch inside it too, or the first deletion is missed.
    os.rename(stage, inbox / "ranker.part")
    freeze = FreezeOnDelete(pid, [inbox, inbox / "ranker.part"], lambda name: committed_version(home, "ranker"))
    os.rename(inbox / "ranker.part", inbox / "ranker")  # a rename within the folder: not a deletion

    seen = freeze.result(timeout=60)
    assert seen[0] in files, f"the first deletion was {seen[0]!r}"
    assert_committed_before_deleted(seen, files, "ranker")
    wait_until(lambda: not (inbox / "ranker").exists(), timeout=60, what="the drop to leave the folder")
    assert reg.version("ranker@1")["status"] == "ready"


def test_register_move_deletes_its_source_only_after_the_version_is_committed(daemon, reg, home, tmp_path):
    source = tmp_path / "weights.safetensors"
    write_safetensors(source, 2, {"w": (256, 256)})
    digest = sha256_of(source)
    freeze = FreezeOnDelete(reg.client.status()["pid"], [tmp_path], lambda name: committed_version(home, "moved"))

    reg.client.register("moved", path=source, move=True, wait=True)
    seen = freeze.result(timeout=60)
    assert seen[0] == source.name
    assert_committed_before_deleted(seen, {source.name: digest}, "moved")
    assert not source.exists()


# -- the order of the durability syscalls, as the kernel saw them -------------------------------------

_SYSCALLS = "fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat"
_LINE = re.compile(r"^(?P<pid>\d+)\s+(?:<\.\.\. (?P<resumed>\w+) resumed>(?P<rest>.*)|(?P<call>\w+)\((?P<args>.*))$")


@dataclass
class Syscall:
    name: str
    args: str      # as strace printed them, with -y: file descriptors carry their paths
    start: int     # line of the trace where it began, and where it returned
    end: int = -1


def parse_trace(text: str) -> list[Syscall]:
    """strace -f output as calls with their start and end lines (a call another thread interrupted
    is printed ``<unfinished ...>``, then ``<... name resumed>``)."""
    calls: list[Syscall] = []
    open_calls: dict[str, Syscall] = {}
    for n, line in enumerate(text.splitlines()):
        m = _LINE.match(line.strip())
        if not m:
            continue
        if m["resumed"]:
            call = open_calls.pop(m["pid"], None)
            if call is not None:
                call.args += m["rest"]
                call.end = n
            continue
        call = Syscall(m["call"], m["args"], n)
        calls.append(call)
        if m["args"].endswith("<unfinished ...>"):
            open_calls[m["pid"]] = call
        else:
            call.end = n
    return calls


def first(calls: list[Syscall], what: str, where: Callable[[Syscall], bool], after: int = -1) -> Syscall:
    hits = [c for c in calls if c.start > after and c.end >= 0 and where(c)]
    assert hits, f"no {what} in the trace after line {after}"
    return hits[0]


@pytest.mark.sqlite_only(reason="the commit is an fsync of SQLite's WAL in the daemon; PostgreSQL commits in its server")
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed: the syscalls cannot be traced")
def test_a_moved_drops_blob_and_its_folder_are_fsynced_then_the_commit_then_the_unlink(daemon, reg, home, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    reg.watch(inbox, mode="move", settle=0.3)
    write_safetensors(tmp_path / "scorer.part", 3, {"w": (128, 128)})
    digest = sha256_of(tmp_path / "scorer.part")
    pid = reg.client.status()["pid"]
    trace = tmp_path / "strace.txt"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-y", "-e", f"trace={_SYSCALLS}", "-o", str(trace),
                               "-p", str(pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        def traced() -> bool:  # every thread of the daemon (strace -p attaches them one by one)
            try:
                return all("TracerPid:\t0\n" not in (t / "status").read_text()
                           for t in Path(f"/proc/{pid}/task").iterdir())
            except FileNotFoundError:  # a thread ended meanwhile: look again
                return False
        wait_until(traced, timeout=60, what="strace to attach to the daemon's threads")
        os.rename(tmp_path / "scorer.part", inbox / "scorer.safetensors")
        wait_until(lambda: not (inbox / "scorer.safetensors").exists(), timeout=60, what="the drop to be taken")
        assert reg.version("scorer@1")["status"] == "ready"
    finally:
        tracer.send_signal(signal.SIGINT)
        _, err = tracer.communicate(timeout=60)
    calls = parse_trace(trace.read_text())
    assert calls, f"strace recorded nothing: {err.decode(errors='replace')}"

    final = str(blob_path(home, digest))
    placed = first(calls, "rename of the blob into place", lambda c: c.name.startswith("rename") and final in c.args)
    blob_synced = [c for c in calls
                   if c.name in ("fsync", "fdatasync") and "/blobs/" in c.args and c.end < placed.start]
    assert blob_synced, "the blob's bytes were fsynced before it was renamed into place"
    folder_synced = first(calls, "fsync of the blob's folder",
                          lambda c: c.name == "fsync" and f"<{blob_path(home, digest).parent}>" in c.args,
                          after=placed.end)
    committed = first(calls, "fsync of the WAL (a commit)",
                      lambda c: c.name in ("fsync", "fdatasync") and "registry.db-wal>" in c.args,
                      after=folder_synced.end)
    removed = first(calls, "unlink of the drop",
                    lambda c: c.name.startswith("unlink") and str(inbox / "scorer.safetensors") in c.args)
    assert committed.end < removed.start, "the drop was unlinked only after a commit was fsynced"
