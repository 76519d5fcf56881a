"""Re-hash stored blobs and name the versions whose bytes changed or vanished."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from . import catalog
from .blobs import BlobStore
from .db import Database
from .jobs import Job


async def blobs_to_check(db: Database, ref: str | None) -> list[Any]:
    if ref:
        row = await catalog.resolve(db, ref)
        return await db.all("SELECT DISTINCT sha256, size FROM manifest WHERE version_id = ?", (row["id"],))
    return await db.all("SELECT sha256, size FROM blobs ORDER BY sha256")


async def run_verify(db: Database, store: BlobStore, pool: Executor, job: Job, blobs: list[Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(max(2, getattr(pool, "_max_workers", 2)))

    async def check(sha: str) -> str:
        async with limit:
            return await loop.run_in_executor(pool, store.verify, sha, job.add)

    results = await asyncio.gather(*(check(b["sha256"]) for b in blobs))
    problems = []
    for blob, status in zip(blobs, results):
        if status == "ok":
            continue
        users = await db.all(
            "SELECT m.name, v.number, v.stage, mf.path FROM manifest mf JOIN versions v ON v.id = mf.version_id "
            "JOIN models m ON m.id = v.model_id WHERE mf.sha256 = ? ORDER BY m.name, v.number", (blob["sha256"],))
        problems.append({"sha256": blob["sha256"], "status": status,
                         "versions": sorted({f"{u['name']}@{u['number']}" for u in users}),
                         "files": [{"ref": f"{u['name']}@{u['number']}", "path": u["path"], "stage": u["stage"]}
                                   for u in users]})
    return {"ok": not problems, "checked": len(blobs), "bytes": sum(b["size"] for b in blobs), "problems": problems}
