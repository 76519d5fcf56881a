"""Resumable blob uploads (``/v1/blobs/uploads``), in the spirit of tus and GCS resumable uploads.

A client announces a file's size and sha256 and gets a session; it sends the bytes in parts,
each at the offset the daemon last made durable; after a dropped connection it asks for that
offset and goes on from there. When the last byte is in, the digest is checked and only then
does the blob appear in the store. Sessions live on disk (``artifacts/upload_session.py``), so
an upload also resumes across a daemon restart; one left idle past ``ttl`` is removed by a
background reaper. Every file operation runs in the pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modelreg.shared.errors import Conflict, DigestMismatch, InvalidInput, NotFound, PayloadTooLarge
from modelreg.shared.timefmt import iso

from ..artifacts.blobs import BlobStore
from ..artifacts.upload_session import COMMITTED, UploadSession, load_all

log = logging.getLogger("modelreg.daemon")
T = TypeVar("T")

BATCH = 4 * 1024 * 1024          # bytes handed to the pool per write
CHECKPOINT = 64 * 1024 * 1024    # within one long part, the durable offset advances every this many bytes
SHA256 = re.compile(r"[0-9a-f]{64}")
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class _Live:
    session: UploadSession
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writer: asyncio.Task[Any] | None = None  # the request appending now, if any


class Uploads:
    def __init__(self, blobs: BlobStore, pool: Executor, max_upload: int, ttl: float) -> None:
        self.blobs, self.pool, self.max_upload, self.ttl = blobs, pool, max_upload, ttl
        self._live: dict[str, _Live] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Pick up the sessions a previous run left (they resume), remove what is past its time."""
        sessions, removed = await self._off_loop(load_all, self.blobs.uploads)
        self._live = {s.id: _Live(s) for s in sessions}
        expired = await self.reap()
        if removed or expired or sessions:
            log.info("resumable uploads: %d kept from the previous run, %d expired, %d leftovers removed",
                     len(sessions) - expired, expired, removed)
        self._reaper = asyncio.create_task(self._reap_forever())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)

    # -- the protocol ---------------------------------------------------------------------------

    async def create(self, body: Any) -> dict[str, Any]:
        """A new session for ``{"size", "sha256"}``; already committed when the store has those bytes."""
        if not isinstance(body, dict):
            raise InvalidInput("body must be an object: {\"size\": bytes, \"sha256\": hex digest}")
        size, sha256 = body.get("size"), body.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"'size' must be the file's size in bytes (an integer >= 0), not {str(size)[:50]!r}",
                               {"field": "size"})
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise InvalidInput(f"'sha256' must be 64 lower-case hex digits, not {str(sha256)[:80]!r}",
                               {"field": "sha256"})
        if size > self.max_upload:
            raise PayloadTooLarge(f"upload of {size} bytes is over the limit of {self.max_upload}",
                                  {"size": size, "limit": self.max_upload})
        stored = await self._off_loop(self.blobs.touch, sha256)
        if stored is not None and stored != size:
            raise InvalidInput(f"the store holds {sha256} with {stored} bytes, not the announced {size}",
                               {"field": "size"})
        upload_id = secrets.token_hex(16)
        session = await self._off_loop(UploadSession.create, self.blobs.uploads, upload_id, size, sha256)
        live = self._live[upload_id] = _Live(session)
        async with live.lock:
            if stored is not None:
                # The store has these bytes (the digest names them): nothing to send.
                await self._off_loop(session.settle, {"sha256": sha256, "size": size, "deduplicated": True})
            elif size == 0:
                await self._finish(live)
        return self.describe(upload_id)

    def describe(self, upload_id: str) -> dict[str, Any]:
        s = self._get(upload_id).session
        return {"id": s.id, "size": s.size, "sha256": s.sha256, "offset": s.offset, "state": s.state,
                "expires_at": iso(s.updated + self.ttl), "blob": s.blob}

    async def append(self, upload_id: str, offset: int, chunks: AsyncIterator[bytes],
                     length: int | None) -> dict[str, Any]:
        """Append a request body at ``offset``; the last byte commits the blob.

        A request that arrives while an earlier one still writes (its connection dropped but
        the daemon has not noticed yet) takes over: the earlier one is stopped, keeps what it
        received, and this one is checked against the offset that leaves.
        """
        live = self._get(upload_id)
        if live.writer is not None and not live.writer.done():
            live.writer.cancel()
        async with live.lock:
            self._still_there(upload_id, live)
            s = live.session
            if s.state == COMMITTED:
                if offset != s.size or length:
                    raise Conflict(f"upload {upload_id} is complete: all {s.size} bytes are in",
                                   {"offset": s.offset})
                return self.describe(upload_id)
            if offset != s.offset:
                raise Conflict(f"upload {upload_id} is at offset {s.offset}, not {offset}: send from {s.offset}",
                               {"offset": s.offset})
            if length is not None and offset + length > s.size:
                raise PayloadTooLarge(f"{length} bytes at offset {offset} run past the announced size of {s.size}",
                                      {"offset": s.offset, "size": s.size})
            live.writer = asyncio.current_task()
            try:
                await self._receive(s, chunks)
            finally:
                live.writer = None
            if s.offset == s.size:
                await self._finish(live)
        return self.describe(upload_id)

    async def _receive(self, s: UploadSession, chunks: AsyncIterator[bytes]) -> None:
        """Write the body and make it durable; a dropped connection keeps what arrived, bad input nothing."""
        pending = bytearray()
        since_checkpoint = 0
        try:
            async for chunk in chunks:
                if s.received + len(pending) + len(chunk) > s.size:
                    raise PayloadTooLarge(f"the body runs past the announced size of {s.size} bytes",
                                          {"offset": s.offset, "size": s.size})
                pending += chunk
                if len(pending) >= BATCH:
                    piece = bytes(pending)
                    pending.clear()  # before the await: a cancel during the write must not write it twice
                    await self._off_loop(s.write, piece)
                    since_checkpoint += len(piece)
                    if since_checkpoint >= CHECKPOINT:
                        await self._off_loop(s.checkpoint)
                        since_checkpoint = 0
        except (ConnectionError, asyncio.CancelledError):
            # The client went away (or a newer request took over): what arrived is good, keep it.
            if pending:
                await self._off_loop(s.write, bytes(pending))
            await self._off_loop(s.checkpoint)
            raise
        except BaseException:
            await self._off_loop(s.rollback)
            raise
        if pending:
            await self._off_loop(s.write, bytes(pending))
        await self._off_loop(s.checkpoint)

    async def _finish(self, live: _Live) -> None:
        """Every byte is in: commit the blob if the digest is the announced one, else discard it all."""
        s = live.session
        digest = await self._off_loop(s.digest)
        if digest != s.sha256:
            self._live.pop(s.id, None)
            await self._off_loop(s.discard)
            raise DigestMismatch(f"the {s.size} bytes received hash to {digest}, not the announced {s.sha256}; "
                                 "the upload is discarded: start a new one", {"sha256": digest})
        await self._off_loop(s.commit, self.blobs)

    async def abort(self, upload_id: str) -> None:
        live = self._get(upload_id)
        if live.writer is not None and not live.writer.done():
            live.writer.cancel()
        async with live.lock:
            self._still_there(upload_id, live)
            del self._live[upload_id]
            await self._off_loop(live.session.discard)

    # -- the timeout ------------------------------------------------------------------------------

    async def reap(self, now: float | None = None) -> int:
        """Remove the sessions idle for longer than ``ttl`` (open or committed); how many."""
        cutoff = (time.time() if now is None else now) - self.ttl
        removed = 0
        for uid, live in list(self._live.items()):
            if live.session.updated >= cutoff or live.lock.locked():
                continue  # in use: a request is appending to it
            async with live.lock:
                if self._live.get(uid) is live:
                    del self._live[uid]
                    await self._off_loop(live.session.discard)
                    removed += 1
        if removed:
            log.info("removed %d resumable uploads idle for more than %g s", removed, self.ttl)
        return removed

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(min(600.0, max(self.ttl / 4, 0.05)))
            try:
                await self.reap()
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad pass
                log.exception("removing expired resumable uploads failed; retrying later")

    # -- helpers ----------------------------------------------------------------------------------

    def _get(self, upload_id: str) -> _Live:
        live = self._live.get(upload_id) if UPLOAD_ID.fullmatch(upload_id) else None
        if live is None:
            raise NotFound(f"no upload {upload_id[:40]!r}: unknown, aborted, discarded or expired; start a new one",
                           {"id": upload_id[:40]})
        return live

    def _still_there(self, upload_id: str, live: _Live) -> None:
        """After waiting for a session's lock: it may have been aborted, discarded or reaped meanwhile."""
        if self._live.get(upload_id) is not live:
            raise NotFound(f"upload {upload_id} was aborted, discarded or expired meanwhile; start a new one",
                           {"id": upload_id})

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` in the pool. A cancel waits for the thread to end before it is raised: no two
        threads ever touch a session's files at once, and what the thread did is known."""
        fut = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            while not fut.done():
                try:
                    await asyncio.wait([fut])
                except asyncio.CancelledError:
                    continue
            raise
