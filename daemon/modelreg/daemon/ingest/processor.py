"""Taking one finished drop: sidecar, metadata, blobs, one version (or a duplicate), cleanup.

Exactly once: the version row and the journal's ``registered`` state commit in the same
transaction, and a drop whose content digest a version of the model already has is
reported as a duplicate. In ``move`` mode the drop leaves the folder only after that
commit. A drop that cannot be registered goes to ``DIR/.failed/`` with an ``.error.txt``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.shared.errors import GateFailed, InvalidInput, ModelregError
from modelreg.shared.names import validate_name

from .. import catalog, events
from ..blobs import BlobStore
from ..db import Database
from ..payloads import Registration, parse_metadata
from ..registration import Registrar, content_digest
from ..sniff import SniffResult
from . import sidecar
from .filters import DropFilter
from .pipeline import merge
from .scan import EntryScan, scan_entry

log = logging.getLogger("modelreg.daemon.ingest")
FAILED_DIR = ".failed"


@dataclass(frozen=True)
class Watch:
    id: int
    path: Path
    model: str | None
    mode: str
    settle: float
    poll: bool
    filter: DropFilter = DropFilter()


class DropFailed(Exception):
    """A drop that cannot be registered; the message is written for a person."""


class DropProcessor:
    def __init__(self, db: Database, blobs: BlobStore, pool: Executor, registrar: Registrar, lifecycle: Any) -> None:
        self.db, self.blobs, self.pool, self.registrar, self.lifecycle = db, blobs, pool, registrar, lifecycle
        self.limit = asyncio.Semaphore(4)  # drops ingested at once, across all watches

    async def take(self, watch: Watch, scan: EntryScan, sniffed: SniffResult | None, problem: str | None) -> str:
        """Ingest one drop; returns what happened: registered | duplicate | failed | changed."""
        async with self.limit:
            journal_id = await self._journal_taken(watch, scan)
            try:
                if problem:
                    raise DropFailed(problem)
                return await self._register(watch, scan, sniffed, journal_id)
            except (DropFailed, InvalidInput) as exc:
                message = exc.message if isinstance(exc, ModelregError) else str(exc)
                await self._fail(watch, scan, journal_id, message)
                return "failed"
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the next drop
                log.exception("ingest of %s failed", scan.name)
                await self._fail(watch, scan, journal_id, f"internal error while registering: {exc}")
                return "failed"

    async def already_handled(self, watch: Watch, entry: str, fingerprint: str) -> bool:
        """Whether this content of the entry was dealt with before (also before a restart).

        An ignored entry stays where it is, in either mode: it is reported once. Copy mode
        keeps every drop in place, so one already registered (or reported) is not taken again;
        in move mode a drop that is back was put back on purpose (a fixed drop from .failed/).
        """
        row = await self.db.one("SELECT fingerprint, state FROM ingest_journal WHERE watch_id = ? AND entry = ? "
                                "ORDER BY id DESC LIMIT 1", (watch.id, entry))
        if row is None or row["fingerprint"] != fingerprint:
            return False
        return row["state"] == "ignored" or (watch.mode == "copy" and row["state"] != "taken")

    async def ignore(self, watch: Watch, scan: EntryScan, reason: str) -> None:
        """An entry that is not a model: one journal row, one event, one log line; never moved."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO ingest_journal (watch_id, entry, fingerprint, state, message, created_at, updated_at) "
                "VALUES (?, ?, ?, 'ignored', ?, ?, ?)", (watch.id, scan.name, scan.fingerprint, reason, tx.now, tx.now))
            await events.append(tx, "drop.ignored", "drop", model=watch.model,
                                data={"watch": str(watch.path), "entry": scan.name, "reason": reason})
        log.info("drop %s ignored: %s", scan.name, reason)

    async def _journal_taken(self, watch: Watch, scan: EntryScan) -> int:
        async with self.db.transaction() as tx:
            cur = await tx.execute(
                "INSERT INTO ingest_journal (watch_id, entry, fingerprint, state, created_at, updated_at) "
                "VALUES (?, ?, ?, 'taken', ?, ?)", (watch.id, scan.name, scan.fingerprint, tx.now, tx.now))
            await events.append(tx, "drop.detected", "drop", model=watch.model,
                                data={"watch": str(watch.path), "entry": scan.name, "files": len(scan.files),
                                      "bytes": sum(s for _, s, _ in scan.files)})
            return cur.lastrowid

    async def _register(self, watch: Watch, scan: EntryScan, sniffed: SniffResult | None, journal_id: int) -> str:
        root = watch.path / scan.name
        loop = asyncio.get_running_loop()
        meta = {}
        side = await loop.run_in_executor(self.pool, sidecar.find, root, scan.is_dir)
        if side is not None:
            meta = await loop.run_in_executor(self.pool, sidecar.read, side)
        name = _model_name(meta, watch, scan)
        payload = scan.payload
        if not payload:
            raise DropFailed(f"{scan.name} holds no model files")
        reg = _registration(meta, sniffed, f"drop:{root}")
        if reg.parents:
            for parent in reg.parents:
                try:
                    await self.lifecycle_resolve(parent)
                except ModelregError:
                    raise DropFailed(f"parent {parent} named in {side.name if side else 'the sidecar'} "
                                     "does not exist in this registry") from None
        move = watch.mode == "move"
        sources = [(rel, root / rel if scan.is_dir else root) for rel in payload]
        stored = await self.registrar.ingest.store(sources, move=move)
        files = [(rel, b.sha256, b.size) for (rel, _), b in zip(sources, stored)]
        # The drop must not have changed while we read it (a writer that paused, then went on).
        again = await loop.run_in_executor(self.pool, scan_entry, watch.path, scan.name)
        if again is None or again.fingerprint != scan.fingerprint:
            # A blob hardlinked from the drop shares its inode: if the writer changed it, its
            # bytes no longer match its name. Remove such blobs before anything can dedup on them.
            linked = [b.sha256 for b in stored if b.method == "rename"]
            if linked:
                await loop.run_in_executor(self.pool, self._discard_changed, linked)
            async with self.db.transaction() as tx:
                await tx.execute("DELETE FROM ingest_journal WHERE id = ?", (journal_id,))
            return "changed"
        digest = content_digest(files)
        async with self.db.transaction() as tx:
            dup = await tx.one("SELECT v.id, v.number, m.name FROM versions v JOIN models m ON m.id = v.model_id "
                               "WHERE m.name = ? AND v.content_digest = ? AND v.status = 'ready' ORDER BY v.number LIMIT 1",
                               (name, digest))
            if dup is not None:
                await tx.execute("UPDATE ingest_journal SET state = 'duplicate', model = ?, version_id = ?, updated_at = ?, "
                                 "message = ? WHERE id = ?", (dup["name"], dup["id"], tx.now,
                                                              f"same content as {dup['name']}@{dup['number']}", journal_id))
                await events.append(tx, "drop.duplicate", "drop", model=dup["name"], version=dup["number"],
                                    data={"watch": str(watch.path), "entry": scan.name, "content_digest": digest})
                outcome, ref = "duplicate", f"{dup['name']}@{dup['number']}"
            else:
                vrow = await self.registrar.create_ready(tx, name, reg, files, f"drop:{watch.path}")
                await tx.execute("UPDATE ingest_journal SET state = 'registered', model = ?, version_id = ?, "
                                 "updated_at = ? WHERE id = ?", (vrow["model"], vrow["id"], tx.now, journal_id))
                await events.append(tx, "drop.registered", "drop", model=vrow["model"], version=vrow["number"],
                                    data={"watch": str(watch.path), "entry": scan.name, "files": len(files),
                                          "total_size": sum(f[2] for f in files), "unsafe": bool(sniffed and sniffed.unsafe)})
                outcome, ref = "registered", f"{vrow['model']}@{vrow['number']}"
        await self.finish(watch, scan.name, journal_id)
        log.info("drop %s → %s (%s)", scan.name, ref, outcome)
        if outcome == "registered" and meta.get("stage"):
            try:
                await self.lifecycle.transition(ref, meta["stage"], f"drop:{watch.path}",
                                                f"requested by the drop's {side.name if side else 'sidecar'}")
            except GateFailed as exc:
                log.info("stage %s requested by %s refused: %s", meta["stage"], scan.name, exc.message)
            except ModelregError as exc:
                log.warning("stage %s requested by %s failed: %s", meta["stage"], scan.name, exc.message)
        return outcome

    def _discard_changed(self, digests: list[str]) -> None:
        for sha in digests:
            if self.blobs.verify(sha) != "ok":
                self.blobs.remove(sha)

    async def lifecycle_resolve(self, ref: str) -> None:
        await catalog.resolve(self.db, ref)

    async def finish(self, watch: Watch, entry: str, journal_id: int) -> None:
        """After commit: a moved drop leaves the folder; then the journal row is done."""
        if watch.mode == "move":
            await asyncio.get_running_loop().run_in_executor(self.pool, _remove, watch.path / entry)
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE ingest_journal SET state = CASE state WHEN 'duplicate' THEN 'duplicate' ELSE 'done' END, "
                             "updated_at = ? WHERE id = ?", (tx.now, journal_id))

    async def _fail(self, watch: Watch, scan: EntryScan, journal_id: int, message: str) -> None:
        loop = asyncio.get_running_loop()
        where = await loop.run_in_executor(self.pool, _quarantine, watch.path, scan.name, message)
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE ingest_journal SET state = 'failed', message = ?, updated_at = ? WHERE id = ?",
                             (message, tx.now, journal_id))
            await events.append(tx, "drop.failed", "drop", model=watch.model,
                                data={"watch": str(watch.path), "entry": scan.name, "message": message,
                                      "moved_to": str(where) if where else None})
        log.warning("drop %s failed: %s", scan.name, message)

    async def resume(self) -> None:
        """Start-up: finish what a crash interrupted (journal rows not yet done)."""
        rows = await self.db.all("SELECT j.*, w.path, w.mode FROM ingest_journal j JOIN watches w ON w.id = j.watch_id "
                                 "WHERE j.state IN ('taken', 'registered')")
        for r in rows:
            if r["state"] == "taken":
                # Nothing was registered for it (that commits with 'registered'): take it again.
                async with self.db.transaction() as tx:
                    await tx.execute("DELETE FROM ingest_journal WHERE id = ?", (r["id"],))
            else:
                watch = Watch(r["watch_id"], Path(r["path"]), None, r["mode"], 0, False)
                await self.finish(watch, r["entry"], r["id"])


def _model_name(meta: dict[str, Any], watch: Watch, scan: EntryScan) -> str:
    name = meta.get("name") or watch.model or _stem(scan.name)
    try:
        return validate_name(name)
    except InvalidInput:
        source = "the sidecar's name" if meta.get("name") else ("--model" if watch.model else "the drop's name")
        raise DropFailed(f"{name!r} (from {source}) is not a valid model name: use 1-128 characters from "
                         "A-Z a-z 0-9 . _ - starting with a letter or digit; rename the drop or set name in "
                         "modelreg.toml") from None


def _stem(entry: str) -> str:
    for suffix in (".safetensors", ".gguf", ".onnx", ".keras", ".joblib", ".pkl", ".pth", ".pt", ".bin", ".ckpt", ".h5"):
        if entry.lower().endswith(suffix):
            return entry[: -len(suffix)]
    return entry


def _registration(meta: dict[str, Any], sniffed: SniffResult | None, source: str) -> Registration:
    """The sidecar's settings plus what the files say (the pipeline's merge: the sidecar wins)."""
    try:
        reg = parse_metadata({k: v for k, v in meta.items() if k not in ("name", "stage")}, source)
    except InvalidInput as exc:
        raise DropFailed(f"the sidecar is invalid: {exc.message}") from None
    return merge(reg, sniffed) if sniffed is not None else reg


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


def _quarantine(folder: Path, entry: str, message: str) -> Path | None:
    """Move a failed drop to DIR/.failed/ with a readable .error.txt beside it."""
    failed = folder / FAILED_DIR
    failed.mkdir(exist_ok=True)
    target = failed / entry
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = failed / f"{entry}.{n}"
    src = folder / entry
    moved = None
    if src.exists() or src.is_symlink():
        os.rename(src, target)
        moved = target
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    (failed / f"{target.name}.error.txt").write_text(
        f"modelreg could not register the drop {entry!r} ({stamp}):\n\n  {message}\n\n"
        f"Fix it and move it back into {folder} to try again.\n")
    return moved

