"""Creating versions: pending, ready, failed, recovery, duplicate content.

A version is created ``pending`` (its number allocated atomically, never reused) with its
params, tags, metrics and lineage; it becomes ``ready`` when its manifest is recorded, or
``failed`` with a message. When the blobs are already durable (an upload, a drop) both
happen in one transaction. Every function here runs inside one write (or read) and returns
typed records; the ``VersionStore`` methods are one hop each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from modelreg.shared.errors import Conflict
from modelreg.shared.names import Ref
from modelreg.shared.timefmt import iso

from ..records import VersionRecord
from . import catalog, events, leases, lineage, metrics
from .tx import Sql, Engine, WriteTx

File = tuple[str, str, int]  # (manifest path, sha256, size)
MAX_RECORDS = 2000  # metric records a version's view shows (the newest)
INTERRUPTED = "interrupted: the daemon stopped before the files were stored; register again"


class NewVersion(Protocol):
    """What a registration says about the version (``payloads.Registration`` is one)."""

    source: str
    description: str
    facts: dict[str, Any]
    params: dict[str, str]
    tags: dict[str, str]
    metrics: Sequence[metrics.Metric]
    datasets: list[dict[str, Any]]
    run: dict[str, Any] | None
    parents: list[str]
    external_parents: list[str]


def content_digest(files: Sequence[File]) -> str:
    """One digest for a version's content: its sorted (path, sha256, size) manifest."""
    return hashlib.sha256(json.dumps(sorted(files), separators=(",", ":")).encode()).hexdigest()


def create_pending(tx: WriteTx, model: str, reg: NewVersion, actor: str, owner: str | None = None) -> VersionRecord:
    """A new ``pending`` version (the model is created on first use) with its metadata and lineage;
    ``owner``: the daemon that stores its files (``leases.Instance``)."""
    tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
               (model, tx.now, tx.now))
    mrow = _allocate(tx, model, getattr(reg, "number", None), getattr(reg, "renumber", False))
    facts = json.dumps(reg.facts)
    vid = tx.one(
        "INSERT INTO versions (model_id, number, status, source, description, facts, created_at, created_by, updated_at, "
        "owner) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (mrow["id"], mrow["number"], reg.source, reg.description, facts, tx.now, actor, tx.now, owner))["id"]
    if reg.params:
        tx.executemany("INSERT INTO params (version_id, key, value) VALUES (?, ?, ?)",
                       [(vid, k, v) for k, v in reg.params.items()])
    if reg.tags:
        tx.executemany("INSERT INTO version_tags (version_id, key, value) VALUES (?, ?, ?)",
                       [(vid, k, v) for k, v in reg.tags.items()])
    metrics.record(tx, vid, reg.metrics)
    if reg.datasets or reg.run is not None or reg.parents or reg.external_parents:
        lineage.add_edges(tx, vid, datasets=reg.datasets, run=reg.run, parents=reg.parents,
                          external_parents=reg.external_parents)
    events.append(tx, "version.created", actor, model=mrow["name"], version=mrow["number"],
                  data={"source": reg.source, **_renumbered(reg, mrow["number"])})
    return VersionRecord(
        id=vid, model_id=mrow["id"], model_name=mrow["name"], number=mrow["number"], stage="none",
        status="pending", status_message="", source=reg.source, description=reg.description,
        content_digest=None, total_size=0, file_count=0, facts=json.loads(facts), created_at=tx.now,
        created_by=actor, updated_at=tx.now, stage_changed_at=None, purged_at=None, deleted_at=None)


def _allocate(tx: WriteTx, model: str, number: int | None, renumber: bool) -> Any:
    """The model's row with the new version's number: the next one, or ``number`` when asked.

    A number is never reused (also after deletion): one below the model's next number was
    spent, so asking for it is a Conflict, unless ``renumber`` accepts the next one instead.
    A higher number is honoured and the numbers skipped stay unused (an import keeps gaps).
    """
    if number is not None:
        row = tx.one("SELECT next_version FROM models WHERE name = ?", (model,))
        if number >= row["next_version"]:
            return tx.one("UPDATE models SET next_version = ? + 1, updated_at = ? WHERE name = ? "
                          "RETURNING id, name, CAST(? AS INTEGER) AS number", (number, tx.now, model, number))
        if not renumber:
            raise Conflict(f"{model}@{number} cannot be created: numbers below {row['next_version']} are taken "
                           f"or were spent (never reused); the next is {model}@{row['next_version']}",
                           {"requested": number, "next": row["next_version"]})
    return tx.one("UPDATE models SET next_version = next_version + 1, updated_at = ? WHERE name = ? "
                  "RETURNING id, name, next_version - 1 AS number", (tx.now, model))


def _renumbered(reg: NewVersion, number: int) -> dict[str, int]:
    """``{"renumbered_from": N}`` when the number asked for was spent and the next one was used."""
    asked = getattr(reg, "number", None)
    return {"renumbered_from": asked} if asked is not None and asked != number else {}


def fresh_detail(tx: WriteTx, rec: VersionRecord, reg: NewVersion, files: Sequence[File]) -> dict[str, Any]:
    """The API view of a version this transaction just created, from what it wrote.

    The same view ``catalog.version_detail`` reads back (keys sorted, the newest 2,000
    records, files by path), without reading it back. Lineage is read (its datasets and
    runs may hold values stored before) unless the version has none.
    """
    if reg.datasets or reg.run is not None or reg.parents or reg.external_parents:
        return catalog.version_detail(tx, rec)
    latest = {r.key: r.value for r in reg.metrics}
    view = catalog.version_summary(rec, {k: latest[k] for k in sorted(latest)})
    view["facts"] = rec.facts
    view["params"] = {k: reg.params[k] for k in sorted(reg.params)}
    view["tags"] = {k: reg.tags[k] for k in sorted(reg.tags)}
    recorded = iso(tx.now)
    view["metric_records"] = [{"key": r.key, "value": r.value, "step": r.step, "dataset": r.dataset,
                               "source": r.source, "recorded_at": recorded} for r in reg.metrics[-MAX_RECORDS:]]
    view["files"] = [{"path": p, "sha256": sha, "size": size} for p, sha, size in sorted(files)]
    view["lineage"] = {"datasets": [], "run": None, "parents": []}
    view["signature"] = None  # a bundle's check is added by signatures.py, in the same write
    return view


def mark_ready(tx: WriteTx, rec: VersionRecord, files: Sequence[File], actor: str) -> VersionRecord:
    """Record the manifest (its blobs are durable) and flip the version to ``ready``. Only a
    pending one: a version recovery marked failed meanwhile (its daemon looked dead: frozen past
    its lease) stays failed."""
    row = tx.one("SELECT status, status_message FROM versions WHERE id = ?", (rec.id,))
    if row is None or row["status"] != "pending":
        raise Conflict(f"{rec.model_name}@{rec.number} is no longer pending ({row['status'] if row else 'gone'}"
                       f"{': ' + row['status_message'] if row and row['status_message'] else ''}); register again",
                       {"model": rec.model_name, "version": rec.number})
    tx.executemany("INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   [(sha, size, tx.now) for _, sha, size in files])
    tx.executemany("INSERT INTO manifest (version_id, path, sha256, size) VALUES (?, ?, ?, ?)",
                   [(rec.id, p, sha, size) for p, sha, size in files])
    digest = content_digest(files)
    total = sum(size for _, _, size in files)
    tx.execute("UPDATE versions SET status = 'ready', content_digest = ?, total_size = ?, file_count = ?, "
               "updated_at = ? WHERE id = ?", (digest, total, len(files), tx.now, rec.id))
    events.append(tx, "version.ready", actor, model=rec.model_name, version=rec.number,
                  data={"files": len(files), "total_size": total, "content_digest": digest})
    return msgspec.structs.replace(rec, status="ready", content_digest=digest, total_size=total,
                                   file_count=len(files), updated_at=tx.now)


def create_ready(tx: WriteTx, model: str, reg: NewVersion, files: Sequence[File], actor: str) -> VersionRecord:
    """A version whose blobs are already durable: created and ready in the same transaction."""
    return mark_ready(tx, create_pending(tx, model, reg, actor), files, actor)


def create_reference(tx: WriteTx, model: str, reg: NewVersion, actor: str) -> VersionRecord | None:
    """A version that only points at its source (an external URI): no files, ready at once, in
    the same transaction. The model must exist already (None when it does not: nothing written)."""
    if tx.one("SELECT 1 FROM models WHERE name = ? AND deleted_at IS NULL", (model,)) is None:
        return None
    return create_ready(tx, model, reg, [], actor)


def fail(tx: WriteTx, rec: VersionRecord, message: str, actor: str) -> None:
    tx.execute("UPDATE versions SET status = 'failed', status_message = ?, updated_at = ? WHERE id = ?",
               (message, tx.now, rec.id))
    events.append(tx, "version.failed", actor, model=rec.model_name, version=rec.number, data={"message": message})


def recover_interrupted(tx: WriteTx) -> int:
    """Versions left pending by a crash can never complete: mark them failed. On PostgreSQL a
    version another daemon is still storing is left alone: only those of dead daemons."""
    live = leases.live_instances(tx)
    pending = [catalog.version_record(r) for r in tx.all(
        "SELECT v.*, m.name AS model_name FROM versions v JOIN models m ON m.id = v.model_id "
        "WHERE v.status = 'pending' ORDER BY v.id") if r["owner"] is None or r["owner"] not in live]
    for rec in pending:
        fail(tx, rec, INTERRUPTED, "daemon")
    return len(pending)


def duplicate_of(q: Sql, model: str, digest: str) -> VersionRecord | None:
    """The first ready version of ``model`` holding exactly this content, if any."""
    row = q.one("SELECT v.*, m.name AS model_name FROM versions v JOIN models m ON m.id = v.model_id "
                "WHERE m.name = ? AND v.content_digest = ? AND v.status = 'ready' ORDER BY v.number LIMIT 1",
                (model, digest))
    return catalog.version_record(row) if row is not None else None


class VersionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def create_pending(self, model: str, reg: NewVersion, actor: str,
                             owner: str | None = None) -> tuple[VersionRecord, dict[str, Any]]:
        """One transaction: a pending version with its metadata (``owner``: the daemon storing its
        files); the record and its view as committed."""
        def write(tx: WriteTx) -> tuple[VersionRecord, dict[str, Any]]:
            rec = create_pending(tx, model, reg, actor, owner)
            return rec, {**fresh_detail(tx, rec, reg, []), **_renumbered(reg, rec.number)}
        return await self.engine.write(write)

    async def create_ready(self, model: str, reg: NewVersion, files: Sequence[File],
                           actor: str) -> tuple[VersionRecord, dict[str, Any]]:
        """One transaction: create, record the manifest, mark ready; the record and its view as committed."""
        def write(tx: WriteTx) -> tuple[VersionRecord, dict[str, Any]]:
            rec = create_ready(tx, model, reg, files, actor)
            return rec, {**fresh_detail(tx, rec, reg, files), **_renumbered(reg, rec.number)}
        return await self.engine.write(write)

    async def create_reference(self, model: str, reg: NewVersion, actor: str) -> VersionRecord | None:
        """One transaction: a ready version without files, if the model exists (else None)."""
        return await self.engine.write(lambda tx: create_reference(tx, model, reg, actor))

    async def mark_ready(self, rec: VersionRecord, files: Sequence[File], actor: str) -> VersionRecord:
        return await self.engine.write(lambda tx: mark_ready(tx, rec, files, actor))

    async def fail(self, rec: VersionRecord, message: str, actor: str) -> None:
        await self.engine.write(lambda tx: fail(tx, rec, message, actor))

    async def recover_interrupted(self) -> int:
        """Every version still pending that no live daemon is storing is marked failed; how many."""
        return await self.engine.write(recover_interrupted)

    async def detail(self, version_id: int) -> dict[str, Any]:
        """The API view of a version known by id (one read)."""
        return await self.engine.read(lambda q: catalog.version_detail(q, catalog.version_by_id(q, version_id)))

    async def find(self, ref: Ref | str) -> VersionRecord:
        """The version a ref names, or NotFound."""
        return await self.engine.read(lambda q: catalog.resolve(q, ref))
