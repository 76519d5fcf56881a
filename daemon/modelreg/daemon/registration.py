"""Registering a version: allocate its number, store its blobs, then mark it ready.

The files are first read by the one ingest pipeline (``ingest/pipeline.py``: the same
sniffers and format checks as a drop folder), so a truncated file is refused before a number
is spent. The version row is then created ``pending`` in one transaction (so its number is
allocated atomically and never reused), the files are hashed and stored off the event loop,
in parallel, and a second transaction records the manifest and flips it to ``ready``. A crash
in between leaves a ``pending`` row that start-up marks ``failed``; never a ``ready``
version whose blobs are missing. A cancelled job ends the version ``failed`` ("cancelled").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.shared.errors import InvalidInput, ModelregError
from modelreg.shared.names import validate_name

from . import catalog, events, lineage, metrics
from .blobs import BlobStore, StoreCancelled
from .db import Database, Transaction
from .ingest.pipeline import Ingest, check, merge
from .jobs import Job, Jobs
from .payloads import FileRef, Registration

MAX_FILES = 100_000


@dataclass
class SourceFile:
    relpath: str
    abspath: Path
    size: int


def collect_files(root: Path) -> list[SourceFile]:
    """Every regular file of a file or folder; symlinks may not lead outside it (blocking)."""
    try:
        st = root.lstat()
    except FileNotFoundError:
        raise InvalidInput(f"{root} does not exist on the daemon's machine") from None
    except PermissionError:
        raise InvalidInput(f"{root} cannot be read by the daemon (permission denied)") from None
    if stat.S_ISLNK(st.st_mode):
        root = _resolve(root)
        st = root.stat()
    if stat.S_ISREG(st.st_mode):
        return [SourceFile(_utf8_name(root.name), root, st.st_size)]
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{root} is neither a regular file nor a folder")
    real_root = root.resolve()
    out: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath) / name
            rel = _utf8_name(full.relative_to(root).as_posix())
            if full.is_symlink():
                target = _resolve(full, rel)
                if not target.is_relative_to(real_root):
                    raise InvalidInput(f"{rel} is a symlink to {target}, outside {root}; refusing to follow it")
                if target.is_dir():
                    continue  # its files are reached through the real folder
            try:
                fst = full.stat()
            except OSError as exc:
                raise InvalidInput(f"cannot read {rel}: {exc.strerror}") from None
            if not stat.S_ISREG(fst.st_mode):
                raise InvalidInput(f"{rel} is not a regular file")
            out.append(SourceFile(rel, full, fst.st_size))
            if len(out) > MAX_FILES:
                raise InvalidInput(f"{root} holds more than {MAX_FILES} files")
    if not out:
        raise InvalidInput(f"{root} holds no files")
    return out


def _resolve(path: Path, shown: str | None = None) -> Path:
    """Where a symlink leads; a broken link or a loop is the caller's mistake, not a crash."""
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        raise InvalidInput(f"{shown or path} is a symlink that leads nowhere (broken, or a loop)") from None


def _utf8_name(rel: str) -> str:
    """A manifest path must be text: a name in another encoding would fail in SQLite and on the wire."""
    try:
        rel.encode()
    except UnicodeEncodeError:
        shown = rel.encode(errors="surrogateescape").decode(errors="replace")
        raise InvalidInput(f"{shown!r} is not a UTF-8 file name; rename it before registering") from None
    return rel


def content_digest(files: list[tuple[str, str, int]]) -> str:
    """One digest for a version's content: its sorted (path, sha256, size) manifest."""
    return hashlib.sha256(json.dumps(sorted(files), separators=(",", ":")).encode()).hexdigest()


class Registrar:
    def __init__(self, db: Database, blobs: BlobStore, pool: Executor, jobs: Jobs, home: Path) -> None:
        self.db, self.blobs, self.pool, self.jobs, self.home = db, blobs, pool, jobs, home.resolve()
        self.ingest = Ingest(blobs, pool)
        self._tasks: dict[asyncio.Task[Any], Job] = {}

    async def register(self, model: str, reg: Registration, actor: str) -> tuple[dict[str, Any], Job | None]:
        """Create the version; returns its view and, when files must be stored, the job doing it.

        Path mode sniffs the files where they are, upload mode the stored blobs; either way
        an incomplete file is refused (InvalidInput) before the version exists.
        """
        validate_name(model)
        loop = asyncio.get_running_loop()
        sources: list[SourceFile] = []
        folder: Path | None = None  # a folder registered (not a file): --move removes it once emptied
        if reg.path is not None:
            # The registry's own files are never a source: --move would delete them.
            real = await loop.run_in_executor(self.pool, _resolve_source, Path(reg.path))
            if real == self.home or real.is_relative_to(self.home) or self.home.is_relative_to(real):
                raise InvalidInput(f"{reg.path} is inside (or contains) the registry home {self.home}; "
                                   "register files from elsewhere")
            sources = await loop.run_in_executor(self.pool, collect_files, Path(reg.path))
            if not await loop.run_in_executor(self.pool, real.is_file):
                folder = Path(reg.path)
            sniffed = await self.ingest.sniff_path(folder or sources[0].abspath, [s.relpath for s in sources])
        else:
            await loop.run_in_executor(self.pool, self._check_uploaded, reg.files or [])
            sniffed = await self.ingest.sniff_blobs([(f.path, f.sha256) for f in reg.files or []])
        check(sniffed)
        merge(reg, sniffed)
        async with self.db.transaction() as tx:
            vrow = await self._create_pending(tx, model, reg, actor)
            if reg.files is not None:
                await self._mark_ready(tx, vrow, [(f.path, f.sha256, f.size) for f in reg.files], actor)
        if reg.files is not None:
            return await self.view(vrow["id"]), None
        job = self.jobs.create("register", total=sum(s.size for s in sources), cancellable=True,
                               subject=f"{vrow['model']}@{vrow['number']}")
        task = asyncio.create_task(self._store(vrow, sources, folder, reg.move, job, actor))
        self._tasks[task] = job
        task.add_done_callback(self._forget)
        return await self.view(vrow["id"]), job

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    async def create_ready(self, tx: Transaction, model: str, reg: Registration, files: list[tuple[str, str, int]],
                           actor: str) -> dict[str, Any]:
        """Create a version whose blobs are already durable, inside the caller's transaction."""
        vrow = await self._create_pending(tx, model, reg, actor)
        await self._mark_ready(tx, vrow, files, actor)
        return vrow

    async def view(self, version_id: int) -> dict[str, Any]:
        row = await self.db.one("SELECT v.*, m.name AS model_name FROM versions v JOIN models m "
                                "ON m.id = v.model_id WHERE v.id = ?", (version_id,))
        return await catalog.version_detail(self.db, row)

    def _check_uploaded(self, files: list[FileRef]) -> None:
        for f in files:
            path = self.blobs.path(f.sha256)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise InvalidInput(f"blob {f.sha256} for {f.path} was never uploaded; POST it to /v1/blobs first") from None
            if size != f.size:
                raise InvalidInput(f"{f.path}: size {f.size} does not match the stored blob ({size} bytes)")

    async def _create_pending(self, tx: Transaction, model: str, reg: Registration, actor: str) -> Any:
        await tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES (?, ?, ?) "
                         "ON CONFLICT (name) DO NOTHING", (model, tx.now, tx.now))
        mrow = await tx.one("UPDATE models SET next_version = next_version + 1, updated_at = ? WHERE name = ? "
                            "RETURNING id, name, next_version - 1 AS number", (tx.now, model))
        cur = await tx.execute(
            "INSERT INTO versions (model_id, number, status, source, description, facts, created_at, created_by, updated_at) "
            "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
            (mrow["id"], mrow["number"], reg.source, reg.description, json.dumps(reg.facts), tx.now, actor, tx.now))
        vid = cur.lastrowid
        await tx.executemany("INSERT INTO params (version_id, key, value) VALUES (?, ?, ?)",
                             [(vid, k, v) for k, v in reg.params.items()])
        await tx.executemany("INSERT INTO version_tags (version_id, key, value) VALUES (?, ?, ?)",
                             [(vid, k, v) for k, v in reg.tags.items()])
        await metrics.record(tx, vid, reg.metrics)
        await lineage.add_edges(tx, vid, datasets=reg.datasets, run=reg.run, parents=reg.parents,
                                external_parents=reg.external_parents)
        await events.append(tx, "version.created", actor, model=mrow["name"], version=mrow["number"],
                            data={"source": reg.source})
        return {"id": vid, "model": mrow["name"], "number": mrow["number"]}

    async def _mark_ready(self, tx: Transaction, vrow: dict[str, Any], files: list[tuple[str, str, int]], actor: str) -> None:
        await tx.executemany("INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                             [(sha, size, tx.now) for _, sha, size in files])
        await tx.executemany("INSERT INTO manifest (version_id, path, sha256, size) VALUES (?, ?, ?, ?)",
                             [(vrow["id"], p, sha, size) for p, sha, size in files])
        digest = content_digest(files)
        total = sum(size for _, _, size in files)
        await tx.execute("UPDATE versions SET status = 'ready', content_digest = ?, total_size = ?, file_count = ?, "
                         "updated_at = ? WHERE id = ?", (digest, total, len(files), tx.now, vrow["id"]))
        await events.append(tx, "version.ready", actor, model=vrow["model"], version=vrow["number"],
                            data={"files": len(files), "total_size": total, "content_digest": digest})

    async def _store(self, vrow: dict[str, Any], sources: list[SourceFile], folder: Path | None, move: bool, job: Job,
                     actor: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            stored = await self.ingest.store([(s.relpath, s.abspath) for s in sources], move=move,
                                             progress=job.add, cancel=job.cancel_requested)
            if job.cancel_requested.is_set():
                raise StoreCancelled()  # asked after the last chunk, before anything was committed
            files = [(s.relpath, b.sha256, b.size) for s, b in zip(sources, stored)]
            async with self.db.transaction() as tx:
                await self._mark_ready(tx, vrow, files, actor)
            if move:
                await loop.run_in_executor(self.pool, _remove_sources, sources, folder)
            job.succeed({"model": vrow["model"], "version": vrow["number"],
                         "methods": sorted({b.method for b in stored})})
        except StoreCancelled:
            try:
                async with self.db.transaction() as tx:
                    await fail_version(tx, vrow["id"], vrow["model"], vrow["number"], "cancelled", actor)
            finally:
                job.cancelled()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the version row
            message = exc.message if isinstance(exc, ModelregError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, OSError):
                message = f"could not store {getattr(exc, 'filename', '') or 'a file'}: {exc.strerror}"
            try:
                async with self.db.transaction() as tx:
                    await fail_version(tx, vrow["id"], vrow["model"], vrow["number"], message, actor)
            finally:
                job.fail(exc if isinstance(exc, ModelregError) else ModelregError(message))
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def close(self) -> None:
        """Shutdown: stop the stores (their threads drop their temp files), then the tasks."""
        for task, job in list(self._tasks.items()):
            job.cancel_requested.set()
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def fail_version(tx: Transaction, version_id: int, model: str, number: int, message: str, actor: str) -> None:
    await tx.execute("UPDATE versions SET status = 'failed', status_message = ?, updated_at = ? WHERE id = ?",
                     (message, tx.now, version_id))
    await events.append(tx, "version.failed", actor, model=model, version=number, data={"message": message})


async def recover_interrupted(db: Database) -> int:
    """Start-up: versions left pending by a crash can never complete; mark them failed."""
    rows = await db.all("SELECT v.id, v.number, m.name FROM versions v JOIN models m ON m.id = v.model_id "
                        "WHERE v.status = 'pending'")
    if rows:
        async with db.transaction() as tx:
            for r in rows:
                await fail_version(tx, r["id"], r["name"], r["number"],
                                   "interrupted: the daemon stopped before the files were stored; register again",
                                   "daemon")
    return len(rows)


def _resolve_source(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        raise InvalidInput(f"{path} is a symlink loop") from None


def _remove_sources(sources: list[SourceFile], folder: Path | None) -> None:
    """After a --move: the files go, then the folders of ``folder``'s tree left empty (only those)."""
    for s in sources:
        s.abspath.unlink(missing_ok=True)
    if folder is None:
        return
    for dirpath, _, _ in os.walk(folder, topdown=False):  # children before their parent
        try:
            os.rmdir(dirpath)  # refuses a folder that still holds anything
        except OSError:
            pass
