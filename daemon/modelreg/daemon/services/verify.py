"""Re-hash stored blobs and name the versions whose bytes changed or vanished (a job).

With S3 configured, what the bucket holds is streamed and re-hashed (the source of truth), then
the daemon's local copy if it has one; each problem says ``where`` (``s3`` or ``local``). A
missing local copy is no problem there: it is fetched from S3 when needed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from .. import payloads
from ..artifacts.blobs import BlobStore
from ..jobs import Job, Jobs
from ..store import Store


async def start(store: Store, blobs: BlobStore, pool: Executor, jobs: Jobs, tasks: set[asyncio.Task[Any]],
                body: Any) -> Job:
    """POST /v1/verify: the blobs of ``ref`` (or every blob), re-hashed by a background job."""
    to_check = await store.gc.blobs_to_verify(payloads.parse_verify(body))
    job = jobs.create("verify", total=sum(size for _, size in to_check))

    async def run() -> None:
        try:
            job.succeed(await run_verify(store, blobs, pool, job, to_check))
        except Exception as exc:  # noqa: BLE001 - reported through the job
            job.fail(exc)

    task = asyncio.create_task(run())
    tasks.add(task)  # cancelled on shutdown
    task.add_done_callback(tasks.discard)
    return job


async def run_verify(store: Store, blobs: BlobStore, pool: Executor, job: Job,
                     to_check: list[tuple[str, int]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(max(2, getattr(pool, "_max_workers", 2)))

    async def check(sha: str, size: int) -> tuple[str, str]:
        if blobs.remote is not None:
            return await blobs.remote.verify(sha, size, job.add)
        async with limit:
            return await loop.run_in_executor(pool, blobs.verify, sha, job.add), "local"

    results = await asyncio.gather(*(check(sha, size) for sha, size in to_check))
    bad = [(sha, status, where) for (sha, _), (status, where) in zip(to_check, results) if status != "ok"]
    users = await store.gc.blob_users([sha for sha, _, _ in bad]) if bad else {}
    problems = []
    for sha, status, where in bad:
        files = users[sha]
        # An MLflow artifact (model None) is named by its mlflow-artifacts: path, not a version.
        problems.append({"sha256": sha, "status": status, "where": where,
                         "versions": sorted({f"{u['model']}@{u['number']}" for u in files if u["model"] is not None}),
                         "files": [{"ref": f"{u['model']}@{u['number']}" if u["model"] is not None else u["path"],
                                    "path": u["path"], "stage": u["stage"]} for u in files]})
    return {"ok": not problems, "checked": len(to_check), "bytes": sum(size for _, size in to_check),
            "problems": problems}
