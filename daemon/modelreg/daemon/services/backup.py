"""backup and restore: a registry home copied while its daemon serves writes, and put back (issue 11).

A backup is a folder: ``registry.db`` (SQLite's online backup, one consistent snapshot taken
while the daemon goes on committing), ``blobs/`` (exactly the blobs that snapshot records,
copied after it and re-hashed on the way, so a corrupt blob fails the backup instead of being
saved), the token only when asked, and ``backup.json`` written last: a folder without it is
not a backup and restore refuses it. Every committed version is in the snapshot; a blob is
stored before any row names it and never changes, so copying the blobs after the snapshot
is consistent.

Restore copies a backup into a new or empty home (again re-hashing every blob), migrates a
backup taken by an older release, rebuilds the serving links and checks the audit chain.
Everything here blocks; it runs in the maintenance process (``python -m
modelreg.daemon.maintenance``), never on a daemon's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelreg.shared.config import TOKEN_FILE, overlaps_home
from modelreg.shared.errors import Conflict, IntegrityError, InvalidInput, NotFound

from ..artifacts.blobs import BlobStore
from ..artifacts.serving import remove_tree
from ..lock import HomeLock
from ..store import maintenance, open_store
from . import audit, doctor

FORMAT = 1
MANIFEST = "backup.json"
DATABASE = "registry.db"
COPY_THREADS = 4
PROGRESS_EVERY = 0.1  # seconds between two progress reports

Progress = Callable[[int, int], None]  # (bytes copied, bytes to copy)


def backup(home: Path, db_path: Path, dest: Path, *, include_token: bool = False,
           progress: Progress | None = None) -> dict[str, Any]:
    """Write a backup of ``home`` into ``dest`` (a new or empty folder); its manifest."""
    dest = dest.absolute()
    if not db_path.is_file():
        raise NotFound(f"no registry at {home}: {db_path} does not exist")
    if overlaps_home(dest.resolve(), home.resolve()):
        raise InvalidInput(f"{dest} is inside (or contains) the registry home {home}; back up to a folder outside it")
    created = _claim_empty(dest, "the backup destination", "choose a new folder")
    started = time.time()
    try:
        dest.chmod(0o700)  # the database holds hook secrets
        snap = maintenance.copy_database(db_path, dest / DATABASE)
        os.chmod(dest / DATABASE, 0o600)
        copied = copy_blobs(BlobStore(home / "blobs"), BlobStore(dest / "blobs"), snap.blobs, home, progress)
        extras = []
        if include_token and (home / TOKEN_FILE).is_file():
            _copy_private(home / TOKEN_FILE, dest / TOKEN_FILE)
            extras.append(TOKEN_FILE)
        manifest = {"format": FORMAT, "started_at": started, "finished_at": time.time(), "home": str(home),
                    "schema": snap.schema, "ready_versions": snap.ready_versions, "last_event": snap.last_event,
                    "blobs": len(snap.blobs), "bytes": copied, "files": [DATABASE, "blobs", *extras],
                    "token": bool(extras)}
        _write_durably(dest / MANIFEST, json.dumps(manifest, indent=2) + "\n")  # last: the backup is complete
    except BaseException:
        _undo(dest, created)
        raise
    return {**manifest, "path": str(dest)}


def restore(src: Path, home: Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Restore the backup ``src`` into ``home`` (new or empty); what it holds and its checks."""
    src, home = src.absolute(), home.absolute()
    manifest = read_manifest(src)
    created = _claim_empty(home, "the home", "restore into a new or empty --home")
    home.chmod(0o700)
    lock = HomeLock(home)  # no daemon may start on a half-restored home
    lock.acquire()
    try:
        snap = maintenance.copy_database(src / DATABASE, home / DATABASE)
        os.chmod(home / DATABASE, 0o600)
        blobs = BlobStore(home / "blobs")
        copied = copy_blobs(BlobStore(src / "blobs"), blobs, snap.blobs, src, progress)
        if (src / TOKEN_FILE).is_file():
            _copy_private(src / TOKEN_FILE, home / TOKEN_FILE)
        chain, schema = asyncio.run(_open_and_check(home))
        health = maintenance.database_health(home / DATABASE)
        links = doctor.rebuild_serving(home, blobs, health.served)
    except BaseException:
        lock.release()
        _undo(home, created)
        raise
    lock.release()
    return {"home": str(home), "from": str(src), "backup_schema": manifest["schema"], "schema": schema,
            "ready_versions": snap.ready_versions, "last_event": snap.last_event, "blobs": len(snap.blobs),
            "bytes": copied, "serving_links": links, "audit": chain, "token": (src / TOKEN_FILE).is_file(),
            # The copy's own integrity_check and foreign_key_check (doctor's words for what fails).
            "database_problems": [f.problem for f in doctor.database_findings(health, home / DATABASE)]}


def read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{src} is not a modelreg backup (no {MANIFEST}; an interrupted backup has none)") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{src / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{src} is a backup in a format this modelreg does not know "
                           f"({manifest.get('format') if isinstance(manifest, dict) else manifest!r})")
    if not (src / DATABASE).is_file():
        raise InvalidInput(f"{src} is incomplete: {DATABASE} is missing")
    return manifest


def copy_blobs(source: BlobStore, target: BlobStore, wanted: list[tuple[str, int]], origin: Path,
               progress: Progress | None = None) -> int:
    """Copy the blobs ``wanted`` (sha256, size), re-hashing each; raises on a missing or changed one."""
    target.prepare()
    tally = _Tally(sum(size for _, size in wanted), progress)

    def one(item: tuple[str, int]) -> int:
        sha, size = item
        path = source.path(sha)
        if not path.is_file():
            raise IntegrityError(f"blob {sha} ({size} bytes), recorded by the database, is missing from "
                                 f"{origin}/blobs (a gc that ran meanwhile, or lost: `modelreg doctor` checks)",
                                 {"sha256": sha})
        stored = target.store_file(path, progress=tally.add)
        if stored.sha256 != sha or stored.size != size:
            target.remove(stored.sha256)
            raise IntegrityError(f"blob {sha} in {origin}/blobs no longer matches its digest "
                                 "(`modelreg verify` names the versions that hold it)", {"sha256": sha})
        return size

    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="modelreg-backup") as pool:
        total = sum(pool.map(one, wanted))
    shutil.rmtree(target.tmp, ignore_errors=True)
    tally.finish()
    return total


class _Tally:
    """Bytes copied by every copying thread, reported at most every PROGRESS_EVERY seconds."""

    def __init__(self, total: int, report: Progress | None) -> None:
        self.total, self.report = total, report
        self.done, self.last = 0, 0.0
        self.lock = threading.Lock()
        if report:
            report(0, total)

    def add(self, n: int) -> None:
        if self.report is None:
            return
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now - self.last >= PROGRESS_EVERY:
                self.last = now
                self.report(min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self.report:
            with self.lock:
                self.report(self.total, self.total)


async def _open_and_check(home: Path) -> tuple[dict[str, Any], int]:
    """Open the restored database as the daemon does (migrating an older one) and walk its chain."""
    store = open_store(None, home)
    await store.open()
    try:
        chain = await audit.verify_chain(store)
    finally:
        await store.close()
    return chain, maintenance.read_snapshot(home / DATABASE).schema


def _claim_empty(path: Path, what: str, advice: str) -> bool:
    """Refuse a path that holds anything; True when this call created the folder."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise Conflict(f"{what} {path} exists and is not a folder; {advice}")
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", …" if len(entries) > 5 else "")
            raise Conflict(f"{what} {path} is not empty (it holds {shown}); {advice}: nothing was changed")
        return False
    path.mkdir(parents=True, mode=0o700)
    return True


def _undo(path: Path, created: bool) -> None:
    """Put a folder this module filled back the way it was (absent or empty)."""
    for entry in list(path.iterdir()) if path.is_dir() else []:
        if entry.is_dir() and not entry.is_symlink():
            remove_tree(entry)
        else:
            entry.unlink(missing_ok=True)
    if created:
        path.rmdir()


def _copy_private(src: Path, dest: Path) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(src.read_bytes())
        f.flush()
        os.fsync(f.fileno())


def _write_durably(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
