"""Retention and garbage collection (PRODUCT.md §4–5).

Kept, whatever happens: every version not archived; archived versions for the retention
period (90 days by default) after they were archived; and the last three versions that
left production, per model, whatever their age, so a rollback target is never collected.
Versions past retention, and deleted versions whatever their age, are marked ``purged`` and
their blobs are removed once no kept version references them (the store rechecks that inside
the purge's write). Upload blobs never registered are removed after a day. With S3 configured
the same blobs leave the bucket too, and so do objects under its prefix that no record knows,
a day after their upload (the bucket is shared: another daemon's registration in flight is
younger than that).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from modelreg.shared.bodies import RETENTION_DAYS  # the default and the least a body may ask

from .. import payloads
from ..artifacts import serving
from ..artifacts.blobs import BlobStore
from ..store import Store

KEEP_FORMER_PRODUCTION = 3
ORPHAN_GRACE_S = 86400


async def collect(store: Store, blobs: BlobStore, pool: Executor, home: Path, body: Any, *,
                  actor: str) -> dict[str, Any]:
    """POST /v1/gc: validate the body, then run (or only report, when dry_run)."""
    dry_run, days = payloads.parse_gc(body)
    return await run(store, blobs, pool, home, dry_run=dry_run, actor=actor, retention_days=days)


async def run(store: Store, blobs: BlobStore, pool: Executor, home: Path, *, dry_run: bool,
              actor: str, retention_days: float = RETENTION_DAYS) -> dict[str, Any]:
    p = await store.gc.plan(cutoff=time.time() - retention_days * 86400, keep_former_production=KEEP_FORMER_PRODUCTION)
    doomed_bytes = sum(size for _, size in p.blobs)
    loop = asyncio.get_running_loop()
    orphans = await loop.run_in_executor(pool, _orphans, blobs, p.known_blobs)
    remote_orphans = await blobs.remote.orphans(p.known_blobs, ORPHAN_GRACE_S) if blobs.remote else []
    report = {"dry_run": dry_run, "retention_days": retention_days, "versions": p.versions,
              "blobs": len(p.blobs), "bytes": doomed_bytes, "orphans": len(set(orphans) | set(remote_orphans))}
    if dry_run or not (p.version_ids or p.blobs or orphans or remote_orphans):
        return report
    gone, purged = await store.gc.purge(p.version_ids, actor=actor, event_data={
        "versions": p.versions, "bytes": doomed_bytes, "orphans": len(orphans)})

    def remove() -> None:
        for sha in gone + orphans:
            blobs.remove(sha)
        for name, number in purged:
            serving.remove_tree(serving.version_dir(home, name, number))

    await loop.run_in_executor(pool, remove)
    if blobs.remote is not None:  # after the purge committed: no retained version references these
        await blobs.remote.remove(dict.fromkeys(gone + remote_orphans))
    report["blobs"] = len(gone)
    return report


def _orphans(blobs: BlobStore, known: frozenset[str]) -> list[str]:
    """Blob files no version or upload record knows, older than the grace period (blocking).

    ctime, not mtime: a hardlinked blob keeps its source's old mtime, but storing it
    (link, chmod) sets its ctime to now."""
    if not blobs.objects.is_dir():
        return []
    cutoff = time.time() - ORPHAN_GRACE_S
    return [sha for sha in blobs.iter_digests()
            if sha not in known and blobs.path(sha).stat().st_ctime < cutoff]
