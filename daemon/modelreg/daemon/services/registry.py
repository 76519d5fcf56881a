"""Registering a version: read its files, allocate its number, store its blobs, mark it ready.

The files are first read by the one ingest pipeline (``ingest/pipeline.py``: the same
sniffers and format checks as a drop folder), so a truncated file is refused before a number
is spent. Uploaded blobs are already durable: the version is created ready in ONE store
transaction (metadata, lineage, manifest, events) whose reply view describes exactly what
was committed. Files on this machine are stored by a job: the version row is created
``pending`` (its number allocated atomically, never reused), the files are hashed and stored
off the event loop, in parallel, and a second transaction records the manifest and flips it
to ``ready``. A crash in between leaves a ``pending`` row that start-up marks ``failed`` (on
PostgreSQL: any daemon, once the one named as its ``owner`` is dead); never a ``ready`` version
whose blobs are missing. A cancelled job ends the version
``failed`` ("cancelled"). With S3 configured (``artifacts/remote.py``) the blobs are pushed
there, digest-checked, before the transaction that makes the version ready.

Nothing here serialises registrations: concurrent ones reach the store together and are
group-committed there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelreg.shared.errors import Conflict, InsufficientStorage, ModelregError, as_disk_full
from modelreg.shared.names import validate_name

from ..artifacts import remote
from ..artifacts.blobs import BlobStore, StoreCancelled
from ..ingest.pipeline import Ingest, SourceFile, check, merge, remove_sources
from ..jobs import Job, Jobs
from ..payloads import Registration
from ..store import Store
from ..store.records import VersionRecord
from .signing import Bundle, Signing


# A bookkeeping write waits this long (s) between tries while the disk is full: the write that
# filled it (another file being stored) gives its space back as soon as it fails itself.
FULL_DISK_RETRIES = (0.1, 0.3, 0.6, 1.0, 2.0)
T = TypeVar("T")


async def retry_on_full_disk(write: Callable[[], Awaitable[T]]) -> T:
    """A small write the registry must not lose to a passing full disk (a version's failure, a
    drop's journal row), tried again for a few seconds: without it a version would stay
    ``pending`` until the next start-up, a drop would fail without its event."""
    for delay in FULL_DISK_RETRIES:
        try:
            return await write()
        except InsufficientStorage:
            await asyncio.sleep(delay)
    return await write()


@dataclass
class Registered:
    """A registration accepted: the version as committed, and the job storing its files (if any)."""

    version: VersionRecord
    view: dict[str, Any]
    job: Job | None = None


class Registrar:
    def __init__(self, store: Store, blobs: BlobStore, pool: Executor, jobs: Jobs, home: Path) -> None:
        self.store, self.blobs, self.pool, self.jobs, self.home = store, blobs, pool, jobs, home.resolve()
        self.ingest = Ingest(blobs, pool)
        self.signing = Signing(store, blobs, pool)
        self._tasks: dict[asyncio.Task[Any], Job] = {}

    async def register(self, model: str, reg: Registration, actor: str) -> Registered:
        """Create the version; with files to store (path mode), also the job storing them.

        Path mode sniffs the files where they are, upload mode the stored blobs; either way
        an incomplete file is refused (InvalidInput) before the version exists.
        """
        validate_name(model)
        if reg.reference is not None:  # nothing to read or sniff: the version only names its URI
            rec, view = await self.store.versions.create_ready(model, reg, [], actor)
            return Registered(rec, view)
        bundle = await self._bundle(reg)
        if reg.files is not None:
            if reg.signature is not None:  # the bundle uploaded with the folder it signs is not one of its files
                reg.files = [f for f in reg.files if f.sha256 != reg.signature] or reg.files
            # Blobs uploaded through another daemon of the registry are in S3, not here yet.
            await remote.fetch(self.blobs, [f.sha256 for f in reg.files], missing_ok=True)
            sniffed = await self.ingest.read_upload(reg.files)
            check(sniffed)
            merge(reg, sniffed)
            files = [(f.path, f.sha256, f.size) for f in reg.files]
            await remote.push(self.blobs, [sha for _, sha, _ in files] + ([bundle.sha256] if bundle else []))
            if bundle is None:
                rec, view = await self.store.versions.create_ready(model, reg, files, actor)
            else:
                rec, view = await self.store.signatures.create_ready(
                    model, reg, files, actor, await self.signing.check(bundle, files), bundle.size)
            return Registered(rec, view)
        assert reg.path is not None
        sources, folder, sniffed = await self.ingest.read_source(Path(reg.path), self.home)
        if reg.signature_path is not None:  # a bundle inside the folder signs the folder; it is not one of its files
            bundle_at = os.path.normpath(reg.signature_path)  # both absolute: compared as text, off the disk
            sources = [s for s in sources if os.path.normpath(s.abspath) != bundle_at] or sources
        check(sniffed)
        merge(reg, sniffed)
        rec, view = await self.store.versions.create_pending(model, reg, actor, owner=self.store.leases.me.id)
        job = self.jobs.create("register", total=sum(s.size for s in sources), cancellable=True, subject=rec.ref)
        task = asyncio.create_task(self._store(rec, sources, folder, reg.move, job, actor, bundle))
        self._tasks[task] = job
        task.add_done_callback(self._forget)
        return Registered(rec, view, job)

    async def register_reference(self, model: str, reg: Registration, actor: str) -> VersionRecord | None:
        """A version that only records where its files live (an external URI such as ``s3://…``,
        as MLflow registers one): no files, nothing sniffed, ready at once; one store write.
        None when the model does not exist (a reference never creates one)."""
        validate_name(model)
        return await self.store.versions.create_reference(model, reg, actor)

    async def wait(self, registered: Registered) -> dict[str, Any]:
        """The version's view once its job ended well; otherwise the job's own error, raised once."""
        job = registered.job
        assert job is not None
        await job.wait()
        if job.state == "cancelled":
            raise Conflict(f"registering {registered.version.ref} was cancelled")
        if job.state == "failed":
            exc = job.exception
            assert exc is not None
            if not isinstance(exc, InsufficientStorage):  # a full disk is a 507 the client can act on
                exc.status = min(exc.status, 422)  # a generic storage error must not leave as a 5xx
            raise exc.with_traceback(None)
        return await self.store.versions.detail(registered.version.id)

    async def _bundle(self, reg: Registration) -> Bundle | None:
        """The signature bundle the registration gives, stored as a blob (None: none given)."""
        if reg.signature is None and reg.signature_path is None:
            return None
        return await self.signing.given(sha256=reg.signature,
                                        path=Path(reg.signature_path) if reg.signature_path else None)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    async def _store(self, rec: VersionRecord, sources: list[SourceFile], folder: Path | None, move: bool, job: Job,
                     actor: str, bundle: Bundle | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            stored = await self.ingest.store([(s.relpath, s.abspath) for s in sources], move=move,
                                             progress=job.add, cancel=job.cancel_requested)
            if job.cancel_requested.is_set():
                raise StoreCancelled()  # asked after the last chunk, before anything was committed
            files = [(s.relpath, b.sha256, b.size) for s, b in zip(sources, stored)]
            await remote.push(self.blobs, [sha for _, sha, _ in files] + ([bundle.sha256] if bundle else []))
            if job.cancel_requested.is_set():
                raise StoreCancelled()  # asked while the blobs went to S3
            if bundle is None:
                await self.store.versions.mark_ready(rec, files, actor)
            else:
                await self.store.signatures.mark_ready(rec, files, actor, await self.signing.check(bundle, files),
                                                       bundle.size)
            if move:
                await loop.run_in_executor(self.pool, remove_sources, sources, folder)
            job.succeed({"model": rec.model_name, "version": rec.number,
                         "methods": sorted({b.method for b in stored})})
        except StoreCancelled:
            try:
                await self.store.versions.fail(rec, "cancelled", actor)
            finally:
                job.cancelled()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the version row
            full = as_disk_full(exc, f"the files of {rec.ref}")
            message = exc.message if isinstance(exc, ModelregError) else f"{type(exc).__name__}: {exc}"
            if full is not None:
                exc, message = full, full.message
            elif isinstance(exc, OSError):
                message = f"could not store {getattr(exc, 'filename', '') or 'a file'}: {exc.strerror}"
            try:
                await retry_on_full_disk(lambda: self.store.versions.fail(rec, message, actor))
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
