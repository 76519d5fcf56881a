"""Taking one finished drop: sidecar, metadata, blobs, one version (or a duplicate), cleanup.

Exactly once: the version row and the journal's ``registered`` state commit in the same
transaction, and a drop whose content digest a version of the model already has is
reported as a duplicate. In ``move`` mode the drop leaves the folder only after that
commit. A drop that cannot be registered goes to ``DIR/.failed/`` with an ``.error.txt``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import shutil
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.shared.errors import GateFailed, InvalidInput, ModelregError
from modelreg.shared.names import KEY_RE, NAME_RE, validate_name

from .. import catalog, events
from ..blobs import BlobStore
from ..db import Database
from ..payloads import MetricRecord, Registration, parse_metadata
from ..registration import Registrar, content_digest
from ..sniff import SniffResult
from . import sidecar
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
        """Copy mode keeps drops in place: one already registered (or reported) is not taken again."""
        row = await self.db.one("SELECT fingerprint, state FROM ingest_journal WHERE watch_id = ? AND entry = ? "
                                "ORDER BY id DESC LIMIT 1", (watch.id, entry))
        return row is not None and row["fingerprint"] == fingerprint and row["state"] != "taken"

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
        stored = await asyncio.gather(*(
            loop.run_in_executor(self.pool, lambda p=p: self.blobs.store_file(p, move=move)) for _, p in sources))
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


def _dataset_from_card(name: str) -> str | None:
    """A hub dataset id ('org/name') as a registry dataset ref ('org--name@hub')."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "--", name.strip()).strip("-.")[:120]
    return f"{clean}@hub" if clean and NAME_RE.match(clean) else None


def _registration(meta: dict[str, Any], sniffed: SniffResult | None, source: str) -> Registration:
    """Merge sidecar settings and sniffed facts into one Registration (sidecar wins)."""
    try:
        reg = parse_metadata({k: v for k, v in meta.items() if k not in ("name", "stage")}, source)
    except InvalidInput as exc:
        raise DropFailed(f"the sidecar is invalid: {exc.message}") from None
    if sniffed is not None:
        reg.facts = {**sniffed.facts, "complete": sniffed.complete, "unsafe": sniffed.unsafe,
                     **({"problems": sniffed.problems} if sniffed.problems else {})}
        known = {d["ref"] for d in reg.datasets}
        for edge in sniffed.lineage:
            if edge.get("relation") == "derived_from" and edge.get("model"):
                reg.external_parents.append(str(edge["model"])[:300])
            elif edge.get("dataset") and edge.get("relation") in ("trained_on", "evaluated_on"):
                ds = _dataset_from_card(str(edge["dataset"]))
                if ds and ds not in known:
                    known.add(ds)
                    reg.datasets.append({"ref": ds, "relation": edge["relation"], "digest": None, "uri": None})
            elif edge.get("relation") == "produced_by" and edge.get("run") and reg.run is None:
                reg.run = {"id": str(edge["run"])[:200], "experiment": None, "started_at": None, "ended_at": None,
                           "hardware": None, "code_revision": None, "hyperparameters": {}}
        for m in sniffed.metrics:
            try:
                value = float(m["value"])
                ds = _dataset_from_card(str(m["dataset"])) if m.get("dataset") else None
                reg.metrics.append(MetricRecord(str(m["key"])[:200], value, "model-card", None, ds))
            except (KeyError, TypeError, ValueError):
                continue
        reg.metrics = [r for r in reg.metrics if math.isfinite(r.value) and KEY_RE.match(r.key)]
    return reg


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

