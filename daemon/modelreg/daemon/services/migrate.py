"""``modelreg migrate``: an embedded registry (SQLite + HOME/blobs) moved to the team backends
(PostgreSQL + an S3 bucket), verified before it says done (issue 13, PRODUCT.md §12).

Order, so that a failure at any point leaves something a second run finishes:

1. Checks that change nothing: the home's lock (no daemon writes the registry meanwhile, none
   starts), the source at the latest schema with every blob it references on disk, the target
   database reachable and empty (or already holding exactly this registry: the resumed case),
   the bucket reachable.
2. The blobs, uploaded before any row names them (a daemon on the target never sees a version
   whose files are missing). Content-addressed, so a blob already in the bucket is skipped:
   a run that failed halfway is finished by the next.
3. The rows: the PostgreSQL migrations, then one transaction that copies every table and
   verifies itself before COMMIT (``store/migrate_to.py``): all rows or none.
4. Every blob checked in the bucket by size, and a summary with the two variables to set.

Blocking work (reading SQLite, stat of the blobs) runs in threads; this runs in the
maintenance process (``python -m modelreg.daemon.maintenance migrate``), never in a daemon.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from modelreg.shared.errors import Conflict, IntegrityError

from ..artifacts.blobs import BlobStore
from ..artifacts.s3 import S3BlobStore, parse_s3_config
from ..lock import HomeLock
from ..store.migrate_to import PgTarget, Source, read_source

UPLOADS = 4            # blobs uploaded at once (more did not go faster against SeaweedFS)
PROGRESS_EVERY = 0.1   # seconds between two progress reports

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def source_database(home: Path, env: dict[str, str] | os._Environ[str]) -> Path:
    """The SQLite file the home's daemon opens: MODELREG_DATABASE=sqlite:PATH, else HOME/registry.db
    (a MODELREG_DATABASE naming PostgreSQL already is the target, not the source)."""
    database = env.get("MODELREG_DATABASE") or ""
    return Path(database[len("sqlite:"):]).expanduser() if database.startswith("sqlite:") else home / "registry.db"


def run(home: Path, to: str, artifacts: str | None, *, progress: Progress | None = None) -> dict[str, Any]:
    """Migrate the registry of ``home`` into the database ``to`` (and its blobs into ``artifacts``)."""
    started = time.monotonic()
    target = PgTarget(to)  # a URL that is not PostgreSQL's is refused before anything else
    s3 = parse_s3_config(artifacts) if artifacts else None
    lock = HomeLock(home)
    try:
        lock.acquire()
    except Conflict as exc:
        raise Conflict(f"the daemon is running on {home}: stop it first (`modelreg daemon --stop`), so that "
                       f"nothing writes the registry while it is copied ({exc.message})") from None
    try:
        result = asyncio.run(_migrate(home, source_database(home, os.environ), target, s3, progress))
    finally:
        lock.release()
    result["seconds"] = round(time.monotonic() - started, 2)
    result["env"] = {"MODELREG_DATABASE": masked(to), **({"MODELREG_ARTIFACTS": artifacts} if artifacts else {})}
    return result


async def _migrate(home: Path, db: Path, target: PgTarget, s3, progress: Progress | None) -> dict[str, Any]:
    source = await asyncio.to_thread(read_source, db)
    sizes = await asyncio.to_thread(_local_sizes, BlobStore(home / "blobs"), source)
    async with target:
        state = await target.state()
        resumed = _resuming(target.where, state, source)
        blobs = {"blobs": len(sizes), "bytes": sum(sizes.values()), "uploaded": 0}
        if s3 is not None:
            async with S3BlobStore(s3) as bucket:
                await bucket.check_bucket()  # missing, refused or unreachable: before any upload
                blobs["uploaded"] = await _upload(bucket, BlobStore(home / "blobs"), sizes, progress)
                await _check_bucket(bucket, sizes)
        if resumed:
            copied = await target.verify(source)
        else:
            await target.create_schema()
            copied = await target.copy(source)
    if not copied.chain["ok"]:
        raise IntegrityError(f"the audit chain does not verify on {target.where}: {copied.chain['message']}")
    return {"source": str(db), "database": target.where, "artifacts": None if s3 is None else _bucket_url(s3),
            "resumed": resumed, "tables": len(copied.counts), "rows": sum(copied.counts.values()),
            "counts": copied.counts, "events": source.head[0], "chain": copied.chain, **blobs}


def _resuming(where: str, state, source: Source) -> bool:
    """Whether the target already holds this very registry (a run that copied the rows, then
    failed on the blobs); refuses any other registry and anything that is not a modelreg one."""
    if state.schema == 0:
        if state.tables:
            raise Conflict(f"{where} holds tables that are not a modelreg registry ({', '.join(state.tables[:5])}"
                           f"{'…' if len(state.tables) > 5 else ''}): migrate into a new, empty database")
        return False
    if not state.data_rows:
        return False
    if state.head == source.head:
        return True  # verify_rows then checks the counts and the chain
    raise Conflict(f"{where} already holds a registry ({state.data_rows} rows, events up to "
                   f"#{state.head[0] if state.head else 0}); migrate copies into an empty database only "
                   "(CREATE DATABASE a new one)")


def _local_sizes(blobs: BlobStore, source: Source) -> dict[str, int]:
    """Every blob's size on disk; refuses a registry whose files are not all there."""
    sizes, missing, wrong = {}, [], []
    for sha256, recorded in sorted(source.blobs.items()):
        try:
            size = blobs.path(sha256).stat().st_size
        except FileNotFoundError:
            missing.append(sha256)
            continue
        if recorded is not None and size != recorded:
            wrong.append(sha256)
        sizes[sha256] = size
    if missing or wrong:
        first = (missing or wrong)[0]
        raise IntegrityError(f"{len(missing)} blob(s) the registry references are missing from {blobs.root} and "
                             f"{len(wrong)} have the wrong size (first: {first}): `modelreg verify` names the "
                             "versions, `modelreg doctor` the rest; nothing was copied")
    return sizes


async def _stored(bucket: S3BlobStore) -> dict[str, int]:
    """Every blob in the bucket with its size: one listing per 1,000 blobs, not a HEAD each."""
    return {obj.sha256: obj.size async for obj in bucket.list_objects()}


async def _upload(bucket: S3BlobStore, local: BlobStore, sizes: dict[str, int], progress: Progress | None) -> int:
    """Upload the blobs the bucket lacks, a few at a time; how many were uploaded."""
    stored = await _stored(bucket)
    todo = [sha for sha in sorted(sizes, key=lambda sha: sizes[sha]) if stored.get(sha) != sizes[sha]]
    total, last = sum(sizes.values()), 0.0
    done = total - sum(sizes[sha] for sha in todo)

    def report(force: bool = False) -> None:
        nonlocal last
        if progress and (force or time.monotonic() - last >= PROGRESS_EVERY):
            progress(done, total)
            last = time.monotonic()

    async def upload(sha256: str) -> None:
        nonlocal done
        if sha256 in stored:
            # Not these bytes (an upload cut off mid-body, which some servers keep), and the
            # store's dedup would trust it: replaced.
            await bucket.delete(sha256)
        await bucket.put_file(local.path(sha256), sha256)  # re-hashed on the way: a bad file stops here
        done += sizes[sha256]
        report()

    report(force=True)
    await _drain(list(todo), UPLOADS, upload)  # popped from the end: the big ones first
    report(force=True)
    return len(todo)


async def _check_bucket(bucket: S3BlobStore, sizes: dict[str, int]) -> None:
    """Every blob in the bucket with the size it has on disk."""
    stored = await _stored(bucket)
    bad = [(sha, stored.get(sha)) for sha in sorted(sizes) if stored.get(sha) != sizes[sha]]
    if bad:
        sha256, found = bad[0]
        raise IntegrityError(f"{len(bad)} blob(s) are not in the bucket as uploaded (first: {sha256}, "
                             f"{'missing' if found is None else f'{found} bytes'}); run migrate again")


async def _drain(queue: list[str], workers: int, work: Callable[[str], Awaitable[None]]) -> None:
    """``work(item)`` for every item, ``workers`` at a time. After an error no new item starts, but
    those under way finish (an upload cancelled mid-body can leave a truncated object behind on
    some servers); then the first error is raised."""
    errors: list[BaseException] = []

    async def worker() -> None:
        while queue and not errors:
            try:
                await work(queue.pop())
            except Exception as exc:  # noqa: BLE001 - raised below, once the others are done
                errors.append(exc)

    await asyncio.gather(*(worker() for _ in range(workers)))
    if errors:
        raise errors[0]


def _bucket_url(s3) -> str:
    return f"s3://{s3.bucket}/{s3.prefix}" if s3.prefix else f"s3://{s3.bucket}"


def masked(dsn: str) -> str:
    """The DSN with its password hidden (a summary is printed and logged)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))

