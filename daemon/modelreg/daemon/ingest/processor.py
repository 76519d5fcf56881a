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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelreg.shared.errors import GateFailed, InsufficientStorage, InvalidInput, ModelregError, PayloadTooLarge
from modelreg.shared.errors import as_disk_full
from modelreg.shared.names import validate_name

from ..artifacts import remote
from ..artifacts.blobs import BlobStore
from ..payloads import Registration, parse_metadata
from ..services.identity import DAEMON
from ..services.registry import Registrar, retry_on_full_disk
from ..sniff import SniffResult
from ..store import Store
from ..store.records import VersionRecord
from . import sidecar
from .filters import DropFilter
from .pipeline import merge
from .scan import SIGNATURE_BUNDLE, EntryScan, scan_entry

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
    def __init__(self, store: Store, blobs: BlobStore, pool: Executor, registrar: Registrar, lifecycle: Any) -> None:
        self.store, self.blobs, self.pool, self.registrar, self.lifecycle = store, blobs, pool, registrar, lifecycle
        self.limit = asyncio.Semaphore(4)  # drops ingested at once, across all watches

    async def take(self, watch: Watch, scan: EntryScan, sniffed: SniffResult | None, problem: str | None) -> str:
        """Ingest one drop; returns what happened: registered | duplicate | failed | changed."""
        async with self.limit:
            journal_id = None
            try:
                journal_id = await self._journal_taken(watch, scan)
                if problem:
                    raise DropFailed(problem)
                return await self._register(watch, scan, sniffed, journal_id)
            except (DropFailed, InvalidInput) as exc:
                message = exc.message if isinstance(exc, ModelregError) else str(exc)
                await self._fail(watch, scan, journal_id, message)
                return "failed"
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the next drop
                full = as_disk_full(exc, f"the drop {scan.name!r}")
                if full is None:
                    log.exception("ingest of %s failed", scan.name)
                message = full.message if full else f"internal error while registering: {exc}"
                await self._fail(watch, scan, journal_id, message)
                return "failed"

    async def already_handled(self, watch: Watch, entry: str, fingerprint: str) -> bool:
        """Whether this content of the entry was dealt with before (also before a restart).

        An ignored entry stays where it is, in either mode: it is reported once. Copy mode
        keeps every registered drop in place, so one already registered is not taken again; a
        drop that is back after it failed was put back on purpose, in either mode (a fixed drop
        from .failed/, or the same one once the disk has room again).
        """
        last = await self.store.watches.last_entry(watch.id, entry)
        if last is None or last[0] != fingerprint:
            return False
        state = last[1]
        return state == "ignored" or (watch.mode == "copy" and state not in ("taken", "failed"))

    async def ignore(self, watch: Watch, scan: EntryScan, reason: str) -> None:
        """An entry that is not a model: one journal row, one event, one log line; never moved."""
        await self.store.watches.ignored(watch.id, scan.name, scan.fingerprint, reason, watch.model,
                                         {"watch": str(watch.path), "entry": scan.name, "reason": reason})
        log.info("drop %s ignored: %s", scan.name, reason)

    async def _journal_taken(self, watch: Watch, scan: EntryScan) -> int:
        data = {"watch": str(watch.path), "entry": scan.name, "files": len(scan.files),
                "bytes": sum(s for _, s, _ in scan.files)}
        return await retry_on_full_disk(
            lambda: self.store.watches.taken(watch.id, scan.name, scan.fingerprint, watch.model, data))

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
        bundle = None
        if scan.is_dir and any(rel == SIGNATURE_BUNDLE for rel, _, _ in scan.files):
            try:
                bundle = await self.registrar.signing.given(path=root / SIGNATURE_BUNDLE)
            except PayloadTooLarge as exc:
                raise DropFailed(f"{SIGNATURE_BUNDLE} is not a signature bundle: {exc.message}") from None
        if reg.parents:
            for parent in reg.parents:
                try:
                    await self.store.versions.find(parent)
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
            await self.store.watches.forget(journal_id)
            return "changed"
        try:  # with S3 configured, the blobs are there before the version is ready
            await remote.push(self.blobs, [sha for _, sha, _ in files] + ([bundle.sha256] if bundle else []))
        except ModelregError as exc:
            raise DropFailed(f"its files could not be stored in S3: {exc.message}") from None

        def event_data(outcome: str, version: VersionRecord) -> dict[str, Any]:
            if outcome == "duplicate":
                return {"watch": str(watch.path), "entry": scan.name, "content_digest": version.content_digest}
            return {"watch": str(watch.path), "entry": scan.name, "files": len(files),
                    "total_size": sum(f[2] for f in files), "unsafe": bool(sniffed and sniffed.unsafe)}

        if bundle is None:
            done = await self.store.watches.register_drop(journal_id, name, reg, files, f"drop:{watch.path}", event_data)
        else:  # its check commits with the version
            done = await self.store.signatures.register_drop(journal_id, name, reg, files, f"drop:{watch.path}",
                                                             event_data, await self.registrar.signing.check(bundle, files),
                                                             bundle.size)
        outcome, ref = done.outcome, done.version.ref
        await self.finish(watch, scan.name, journal_id)
        log.info("drop %s → %s (%s)", scan.name, ref, outcome)
        if outcome == "registered" and meta.get("stage"):
            try:
                # The daemon acting on the drop's request (an approvals gate makes it a request).
                await self.lifecycle.transition(ref, meta["stage"], replace(DAEMON, claimed=f"drop:{watch.path}"),
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

    async def finish(self, watch: Watch, entry: str, journal_id: int) -> None:
        """After commit: a moved drop leaves the folder; then the journal row is done."""
        if watch.mode == "move":
            await asyncio.get_running_loop().run_in_executor(self.pool, _remove, watch.path / entry)
        await self.store.watches.finish(journal_id)

    async def _fail(self, watch: Watch, scan: EntryScan, journal_id: int | None, message: str) -> None:
        """Quarantine first: on a full disk the database may refuse to record the failure, and the
        drop with its reason file is what a person looks at. ``journal_id`` is None when even the
        ``taken`` row could not be written."""
        loop = asyncio.get_running_loop()
        where = await loop.run_in_executor(self.pool, _quarantine, watch.path, scan.name, message)
        log.warning("drop %s failed: %s", scan.name, message)
        if journal_id is None:
            return
        data = {"watch": str(watch.path), "entry": scan.name, "message": message,
                "moved_to": str(where) if where else None}
        try:
            await retry_on_full_disk(lambda: self.store.watches.fail_drop(journal_id, message, watch.model, data))
        except InsufficientStorage as exc:
            # The drop and its .error.txt are in .failed/; the 'taken' row is forgotten at start-up.
            log.warning("drop %s: its failure could not be recorded: %s", scan.name, exc.message)

    async def resume(self, watch_id: int) -> None:
        """Before a watch runs here (start-up, or taken over from a daemon that died): finish what
        a crash interrupted (its journal rows not yet done)."""
        for r in await self.store.watches.unfinished(watch_id):
            if r.state == "taken":
                # Nothing was registered for it (that commits with 'registered'): take it again.
                await self.store.watches.forget(r.id)
            else:
                watch = Watch(r.watch_id, Path(r.watch_path), None, r.watch_mode, 0, False)
                await self.finish(watch, r.entry, r.id)


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
    reason = failed / f"{target.name}.error.txt"
    try:
        reason.write_text(f"modelreg could not register the drop {entry!r} ({stamp}):\n\n  {message}\n\n"
                          f"Fix it and move it back into {folder} to try again.\n")
    except OSError as exc:  # a watched folder on the full disk itself: the drop is safe, the reason is logged
        reason.unlink(missing_ok=True)
        log.warning("could not write %s (%s); the drop is in %s", reason, exc.strerror, failed)
    return moved

