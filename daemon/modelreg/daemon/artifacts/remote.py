"""S3 as the artifacts' source of truth, the local blob store as its staging area and cache (issue 13).

With ``MODELREG_ARTIFACTS=s3://bucket/prefix`` every blob is first stored locally as always
(hashed, fsynced, renamed: ``blobs.py``), then *pushed*: uploaded under its content key unless
the bucket has it already, the digest checked on the way (``S3BlobStore.put_file``). A version
turns ``ready`` only after its blobs are pushed, so what a ready version references is in S3
whichever daemon registered it. A daemon that needs bytes on disk (a serving folder, a card,
sniffing an upload, a signature check) and lacks them *fetches* them from S3 into its local
store first, hashed as they arrive. Downloads bypass the daemon with presigned URLs.

The daemon holds one ``RemoteBlobs`` as ``BlobStore.remote``; the module functions ``push``
and ``fetch`` are no-ops for a daemon without one, so callers need not ask.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from modelreg.shared.errors import IntegrityError, ModelregError, NotFound

from .blobs import BlobStore, Progress, batched
from .s3 import S3BlobStore, S3Config

PARALLEL = 4                     # blobs pushed, fetched or re-hashed at once
HASH_BATCH = 8 * 1024 * 1024     # bytes of an S3 body handed to the pool per hop
URL_TTL = 3600                   # seconds a presigned download URL stays valid


class RemoteBlobs:
    """The S3 side of a daemon's blob store; blocking work (hashing, file IO) goes to ``pool``."""

    def __init__(self, s3: S3BlobStore, local: BlobStore, pool: Executor) -> None:
        self.s3, self.local, self.pool = s3, local, pool
        self._limit = asyncio.Semaphore(PARALLEL)

    @property
    def config(self) -> S3Config:
        return self.s3.config

    def describe(self) -> dict[str, Any]:
        """What status shows: where the artifacts live, never the credentials."""
        c = self.config
        return {"backend": "s3", "url": f"s3://{c.bucket}/{c.prefix}", "endpoint": c.endpoint_url or "AWS",
                "region": c.region}

    async def _off_loop(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- before a version turns ready ----------------------------------------------------------

    async def push(self, digests: Iterable[str]) -> None:
        """Every blob in S3, digest-checked; those the bucket holds already are not sent again."""
        await asyncio.gather(*(self._push_one(sha) for sha in dict.fromkeys(digests)))

    async def _push_one(self, sha: str) -> None:
        async with self._limit:
            stored = await self.s3.size(sha)
            local = await self._off_loop(self._local_size, sha)
            if stored is not None and (local is None or stored == local):
                return
            if local is None:
                raise IntegrityError(f"blob {sha} is neither in this daemon's store nor in "
                                     f"s3://{self.config.bucket}/{self.config.prefix}; it cannot be registered")
            # A short object under the key (a PUT cut off mid-body) is replaced; the digest is checked on the way.
            await self.s3.put_file(self.local.path(sha), sha)

    def _local_size(self, sha: str) -> int | None:
        try:
            return self.local.path(sha).stat().st_size
        except FileNotFoundError:
            return None

    # -- bytes this daemon needs on disk -------------------------------------------------------

    async def fetch(self, digests: Iterable[str], *, missing_ok: bool = False) -> None:
        """A local copy of every blob (from S3 for those this daemon lacks), checked against its digest.

        ``missing_ok``: a blob S3 lacks too is left absent (the caller says it was never uploaded);
        otherwise it is an IntegrityError."""
        wanted = list(dict.fromkeys(digests))
        lacking = await self._off_loop(lambda: [sha for sha in wanted if not self.local.has(sha)])
        await asyncio.gather(*(self._fetch_one(sha, missing_ok) for sha in lacking))

    async def _fetch_one(self, sha: str, missing_ok: bool) -> None:
        async with self._limit:
            if missing_ok and not await self.s3.exists(sha):
                return
            writer = await self._off_loop(self.local.open_writer)
            try:
                async for piece in batched(self.s3.open_range(sha), HASH_BATCH):
                    await self._off_loop(writer.write, piece)
                if writer.digest != sha:
                    raise IntegrityError(f"the bytes S3 holds for blob {sha} hash to {writer.digest}; "
                                         "run `modelreg verify`", {"sha256": sha})
                await self._off_loop(writer.commit)
            except NotFound:
                raise IntegrityError(f"blob {sha} is missing from s3://{self.config.bucket}/{self.config.prefix}; "
                                     "run `modelreg verify`", {"sha256": sha}) from None
            finally:
                await self._off_loop(writer.abort)  # no-op once committed (the temp file is gone)

    async def url(self, sha: str) -> str:
        """A presigned GET URL: the client fetches the bytes from S3 itself, with no credentials."""
        return await self.s3.presigned_url(sha, URL_TTL)

    # -- verify and gc -------------------------------------------------------------------------

    async def verify(self, sha: str, size: int, progress: Progress | None = None) -> tuple[str, str]:
        """(status, where): S3's bytes re-hashed (streamed, hashed in the pool), then the local
        copy if there is one; 'ok', 'missing' or 'corrupt', and 's3' or 'local'."""
        async with self._limit:
            stored = await self.s3.size(sha)
            if stored is None:
                return "missing", "s3"
            if stored != size:
                return "corrupt", "s3"
            h = hashlib.sha256()
            try:
                async for piece in batched(self.s3.open_range(sha), HASH_BATCH):
                    await self._off_loop(h.update, piece)
                    if progress:
                        progress(len(piece))
            except NotFound:
                return "missing", "s3"
            if h.hexdigest() != sha:
                return "corrupt", "s3"
            if await self._off_loop(self.local.has, sha):
                return await self._off_loop(self.local.verify, sha), "local"
            return "ok", "s3"

    async def remove(self, digests: Iterable[str]) -> None:
        for sha in digests:
            await self.s3.delete(sha)

    async def orphans(self, known: frozenset[str], grace: float) -> list[str]:
        """Objects under the prefix no record knows, uploaded longer than ``grace`` seconds ago."""
        cutoff = time.time() - grace
        return [o.sha256 async for o in self.s3.list_objects() if o.sha256 not in known and o.uploaded < cutoff]


async def open_remote(url: str, local: BlobStore, pool: Executor, env: dict[str, str] | None = None) -> RemoteBlobs:
    """Start-up: parse the setting, connect, check the bucket; a mistake is one ModelregError sentence."""
    from .s3 import parse_s3_config

    s3 = S3BlobStore(parse_s3_config(url, env))
    await s3.open()
    try:
        await s3.check_bucket()
    except ModelregError:
        await s3.close()
        raise
    return RemoteBlobs(s3, local, pool)


async def push(blobs: BlobStore, digests: Iterable[str]) -> None:
    """Before a version turns ready: its blobs in S3 (nothing to do without S3)."""
    if blobs.remote is not None:
        await blobs.remote.push(digests)


async def fetch(blobs: BlobStore, digests: Iterable[str], *, missing_ok: bool = False) -> None:
    """Before local bytes are read: fetched from S3 when this daemon lacks them (nothing to do without S3)."""
    if blobs.remote is not None:
        await blobs.remote.fetch(digests, missing_ok=missing_ok)
