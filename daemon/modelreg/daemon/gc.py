"""Retention and garbage collection (PRODUCT.md §4–5).

Kept, whatever happens: every version not archived; archived versions for the retention
period (90 days by default) after they were archived; and the last three versions that
left production, per model, whatever their age, so a rollback target is never collected.
Versions past retention, and deleted versions whatever their age, are marked ``purged`` and
their blobs are removed once no kept version references them. Upload blobs never registered are removed after a day.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from . import events, serving
from .blobs import BlobStore
from .db import Database, Transaction

RETENTION_DAYS = 90
KEEP_FORMER_PRODUCTION = 3
ORPHAN_GRACE_S = 86400


async def rollback_targets(src: Database | Transaction, model_id: int | None = None) -> set[int]:
    """Ids of the last KEEP_FORMER_PRODUCTION live versions that left production (per model)."""
    rows = await src.all(
        "SELECT version_id FROM (SELECT version_id, model_id, max(id) AS last_left, "
        "row_number() OVER (PARTITION BY model_id ORDER BY max(id) DESC) AS rank "
        "FROM stage_changes WHERE from_stage = 'production' "
        # After a rollback the production version has left production before: it is not a
        # former one, and must not take one of the three places. A deleted one cannot be
        # rolled back to, so the next older one takes its place.
        "AND version_id NOT IN (SELECT id FROM versions WHERE stage = 'production' OR deleted_at IS NOT NULL) "
        + ("AND model_id = ? " if model_id is not None else "")
        + "GROUP BY model_id, version_id) WHERE rank <= ?",
        (*((model_id,) if model_id is not None else ()), KEEP_FORMER_PRODUCTION))
    return {r["version_id"] for r in rows}


async def plan(db: Database, retention_days: float = RETENTION_DAYS) -> dict[str, Any]:
    cutoff = time.time() - retention_days * 86400
    protected = await rollback_targets(db)
    expired = [r for r in await db.all(
        "SELECT v.id, v.number, m.name, v.stage_changed_at, v.deleted_at FROM versions v "
        "JOIN models m ON m.id = v.model_id WHERE v.purged_at IS NULL AND (v.deleted_at IS NOT NULL OR "
        "(v.stage = 'archived' AND coalesce(v.stage_changed_at, v.created_at) < ?))",
        (cutoff,)) if r["id"] not in protected]
    expired_ids = {r["id"] for r in expired}
    live = {r["sha256"] for r in await db.all(
        "SELECT DISTINCT mf.sha256 FROM manifest mf JOIN versions v ON v.id = mf.version_id WHERE v.purged_at IS NULL "
        "AND v.id NOT IN (SELECT value FROM json_each(?))", (json.dumps(sorted(expired_ids)),))}
    doomed = [dict(r) for r in await db.all("SELECT sha256, size FROM blobs ORDER BY sha256") if r["sha256"] not in live]
    return {"retention_days": retention_days, "versions": [f"{r['name']}@{r['number']}" for r in expired],
            "version_ids": sorted(expired_ids), "blobs": doomed, "bytes": sum(b["size"] for b in doomed),
            "protected_former_production": len(protected)}


async def run(db: Database, blobs: BlobStore, pool: Executor, home: Path, *, dry_run: bool,
              actor: str, retention_days: float = RETENTION_DAYS) -> dict[str, Any]:
    p = await plan(db, retention_days)
    loop = asyncio.get_running_loop()
    orphans = await loop.run_in_executor(pool, _orphans, blobs, {b["sha256"] for b in await db.all("SELECT sha256 FROM blobs")})
    report = {"dry_run": dry_run, "retention_days": retention_days, "versions": p["versions"],
              "blobs": len(p["blobs"]), "bytes": p["bytes"], "orphans": len(orphans)}
    if dry_run or not (p["version_ids"] or p["blobs"] or orphans):
        return report
    async with db.transaction() as tx:
        for vid in p["version_ids"]:
            await tx.execute("UPDATE versions SET purged_at = ? WHERE id = ? AND (stage = 'archived' OR "
                             "deleted_at IS NOT NULL)", (tx.now, vid))
        # Recheck inside the write lock: only blobs no unpurged version references go.
        gone = [r["sha256"] for r in await tx.all(
            "SELECT b.sha256 FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM manifest mf JOIN versions v "
            "ON v.id = mf.version_id WHERE mf.sha256 = b.sha256 AND v.purged_at IS NULL)")]
        await tx.executemany("DELETE FROM blobs WHERE sha256 = ?", [(s,) for s in gone])
        await events.append(tx, "gc.completed", actor, data={"versions": p["versions"], "blobs": len(gone),
                                                             "bytes": p["bytes"], "orphans": len(orphans)})
    # A deleted model's folders went when it was deleted (its name may be someone else's now).
    purged = await db.all("SELECT m.name, v.number FROM versions v JOIN models m ON m.id = v.model_id "
                          "WHERE v.purged_at IS NOT NULL AND m.deleted_at IS NULL "
                          "AND v.id IN (SELECT value FROM json_each(?))", (json.dumps(p["version_ids"]),))

    def remove() -> None:
        for sha in gone + orphans:
            blobs.remove(sha)
        for r in purged:
            serving.remove_tree(serving.version_dir(home, r["name"], r["number"]))

    await loop.run_in_executor(pool, remove)
    report["blobs"] = len(gone)
    return report


def _orphans(blobs: BlobStore, known: set[str]) -> list[str]:
    """Blob files no version or upload record knows, older than the grace period (blocking).

    ctime, not mtime: a hardlinked blob keeps its source's old mtime, but storing it
    (link, chmod) sets its ctime to now."""
    if not blobs.objects.is_dir():
        return []
    cutoff = time.time() - ORPHAN_GRACE_S
    return [sha for sha in blobs.iter_digests()
            if sha not in known and blobs.path(sha).stat().st_ctime < cutoff]
