"""mlflow-artifacts over our blob store: upload, list, download, delete, multipart (issue 10).

An uploaded file is streamed into the content-addressed blob store (hashed and written off
the event loop, deduplicated like every other blob), then ONE store write records its path →
(sha256, size) in the artifact tree, replacing an earlier upload of the same path. Nothing is
ever read from or written to a path the client names: paths are keys in the tree.

``_registry/<model>/<version>/…`` is a read-only folder over a registry version's own
manifest, so the download URI the registry routes give a version (``mlflow-artifacts:/
_registry/<model>/<version>``) lists and downloads exactly the files that version holds.

Multipart uploads (``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD``) follow the stock server's
protocol: ``mpu/create`` hands out one URL per part on this daemon; the unguessable upload id
in it is the capability (the client sends no token to such URLs); parts land in HOME's
``mlflow-uploads/<id>/``; ``mpu/complete`` checks every part's digest (its ETag), then
assembles and hashes them into one blob off the loop; ``mpu/abort`` and a timeout remove them.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.shared.errors import InvalidInput, NotFound, PayloadTooLarge
from modelreg.shared.names import validate_relpath

from ...artifacts import remote
from ...artifacts.blobs import CHUNK, BlobStore, BlobWriter, HashingFile
from ...store import Store
from .tracking import DIGITS, REGISTRY_FOLDER

UPLOADS_DIR = "mlflow-uploads"
PART_ROUTE = "/api/2.0/mlflow-artifacts/mpu/part/"  # + <upload id>/<part number>: open (middleware)
MAX_PARTS = 10000  # S3's limit, which the client's chunking assumes
UPLOAD_TIMEOUT_S = 24 * 3600  # an upload neither completed nor aborted is removed after this
_BATCH = 4 * 1024 * 1024


def artifact_path(path: Any, *, writable: bool = False) -> str:
    """A path in the artifact tree as the client sent it, or InvalidInput (MLflow's
    INVALID_PARAMETER_VALUE): relative, no '..', no NUL or backslash, valid UTF-8, not too long."""
    if not isinstance(path, str):
        raise InvalidInput(f"Invalid path {str(path)[:100]!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("Invalid path: it is not valid UTF-8") from None
    if any(ord(c) < 32 for c in path):
        raise InvalidInput(f"Invalid path {path[:200]!r}: control characters")
    validate_relpath(path)
    if writable and path.split("/", 1)[0] == REGISTRY_FOLDER:
        raise InvalidInput(f"Invalid path {path!r}: {REGISTRY_FOLDER}/ holds registry versions and is read-only")
    return path


@dataclass
class _Upload:
    path: str
    parts: int
    folder: Path
    created: float = field(default_factory=time.monotonic)
    digests: dict[int, str] = field(default_factory=dict)  # part number → sha256 of what arrived


class Artifacts:
    def __init__(self, store: Store, blobs: BlobStore, pool: Executor, home: Path, max_upload: int) -> None:
        self.store, self.blobs, self.pool, self.max_upload = store, blobs, pool, max_upload
        self.uploads_root = home / UPLOADS_DIR
        self._uploads: dict[str, _Upload] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Remove the parts a previous run left (its uploads cannot complete), start the timeout."""
        await self._off_loop(self._reset_uploads_root)
        self._reaper = asyncio.create_task(self._reap_forever())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        await self._off_loop(self._reset_uploads_root)
        self._uploads.clear()

    def _reset_uploads_root(self) -> None:
        shutil.rmtree(self.uploads_root, ignore_errors=True)
        self.uploads_root.mkdir(mode=0o700, exist_ok=True)

    async def _off_loop(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- single-request upload, listing, download, delete -----------------------------------------

    async def upload(self, path: str, chunks: AsyncIterator[bytes], length: int | None) -> dict[str, Any]:
        """PUT artifacts/<path>: the body into the blob store, then its path into the tree."""
        path = artifact_path(path, writable=True)
        writer = await self._off_loop(self.blobs.open_writer)
        try:
            await self._stream(chunks, length, writer.write, lambda: writer.size)
            stored = await self._off_loop(writer.commit)
        except BaseException:
            await self._off_loop(writer.abort)
            raise
        await remote.push(self.blobs, [stored.sha256])  # another daemon of the registry may serve it
        await self._record(path, stored.sha256, stored.size)
        return {}

    async def _record(self, path: str, sha256: str, size: int) -> None:
        refused = await self.store.tracking.put_artifact(path, sha256, size)
        if refused is not None:
            raise InvalidInput(f"Invalid path {path!r}: {refused}")

    async def _stream(self, chunks: AsyncIterator[bytes], length: int | None, write: Any, written: Any) -> None:
        """Copy a request body through ``write`` a few MB at a time, off the loop, within the limit."""
        if length is not None and length > self.max_upload:
            raise PayloadTooLarge(f"upload of {length} bytes is over the limit of {self.max_upload}")
        pending = bytearray()
        async for chunk in chunks:
            pending += chunk
            if written() + len(pending) > self.max_upload:
                raise PayloadTooLarge(f"upload is over the limit of {self.max_upload} bytes")
            if len(pending) >= _BATCH:
                await self._off_loop(write, bytes(pending))
                pending.clear()
        if pending:
            await self._off_loop(write, bytes(pending))
        if length is not None and written() != length:
            raise InvalidInput(f"upload ended after {written()} of {length} bytes")

    async def list(self, path: Any) -> dict[str, Any]:
        """GET artifacts?path=: one level of a folder, names relative to it, as the stock server."""
        prefix = "" if path in (None, "") else artifact_path(path)
        if prefix.split("/", 1)[0] == REGISTRY_FOLDER:
            entries = await self._registry_listing(prefix)
        else:
            entries = [(e.path.rsplit("/", 1)[-1], e.is_dir, e.size) for e in await self.store.tracking.list_dir(prefix)]
        files = []
        for name, is_dir, size in entries:
            files.append({"path": name, "is_dir": True} if is_dir else {"path": name, "is_dir": False, "file_size": size})
        return {"files": files}

    async def _registry_listing(self, prefix: str) -> list[tuple[str, bool, int | None]]:
        ref, sub = _registry_ref(prefix)
        if ref is None:
            return []
        _, files = await self.store.catalog.resolve_with_files(ref)
        cut = len(sub) + 1 if sub else 0
        seen: dict[str, tuple[str, bool, int | None]] = {}
        for f in files:
            if sub and not f["path"].startswith(sub + "/"):
                continue
            head, sep, _ = f["path"][cut:].partition("/")
            seen[head] = (head, True, None) if sep else (head, False, f["size"])
        return [seen[k] for k in sorted(seen)]

    async def download(self, path: str) -> Path | str:
        """GET artifacts/<path>: the blob file holding it, or with S3 its presigned URL; NotFound when it is no file."""
        path = artifact_path(path)
        if path.split("/", 1)[0] == REGISTRY_FOLDER:
            ref, sub = _registry_ref(path)
            if ref is None or not sub:
                raise NotFound(f"No artifact at {path}")
            _, entry = await self.store.catalog.file_entry(ref, sub)
            sha = entry["sha256"] if entry is not None else None
        else:
            rec = await self.store.tracking.artifact(path)
            sha = rec.sha256 if rec is not None else None
        if sha is None:
            raise NotFound(f"No artifact at {path}")
        if self.blobs.remote is not None:
            return await self.blobs.remote.url(sha)
        blob = self.blobs.path(sha)
        if not await self._off_loop(blob.is_file):
            raise NotFound(f"The stored bytes of {path} are missing (blob {sha[:12]}…); run `modelreg verify`")
        return blob

    async def delete(self, path: str) -> dict[str, Any]:
        """DELETE artifacts/<path>: the file or the whole folder (its blobs stay until gc)."""
        await self.store.tracking.delete_artifacts(artifact_path(path, writable=True))
        return {}

    # -- multipart ------------------------------------------------------------------------------

    async def create_multipart(self, path: str, p: dict[str, Any], base_url: str) -> dict[str, Any]:
        """``path`` is the folder; the file keeps the name of the client's local file (``p["path"]``),
        as the stock server does."""
        path = _destination(path, p)
        parts = p.get("num_parts", 1)
        if isinstance(parts, str) and DIGITS.fullmatch(parts):
            parts = int(parts)
        if not isinstance(parts, int) or isinstance(parts, bool) or not 1 <= parts <= MAX_PARTS:
            raise InvalidInput(f"Invalid value {str(parts)[:50]!r} for 'num_parts': 1 to {MAX_PARTS}")
        upload_id = secrets.token_urlsafe(32)
        folder = self.uploads_root / upload_id
        await self._off_loop(lambda: folder.mkdir(mode=0o700))
        self._uploads[upload_id] = _Upload(path, parts, folder)
        return {"upload_id": upload_id,
                "credentials": [{"url": f"{base_url}{PART_ROUTE}{upload_id}/{n}", "part_number": n, "headers": {}}
                                for n in range(1, parts + 1)]}

    def _upload(self, upload_id: str, path: str | None = None) -> _Upload:
        upload = self._uploads.get(upload_id) if isinstance(upload_id, str) else None
        if upload is None or (path is not None and upload.path != path):
            raise NotFound("No such multipart upload (unknown, completed, aborted or timed out)")
        return upload

    async def put_part(self, upload_id: str, number: str, chunks: AsyncIterator[bytes],
                       length: int | None) -> str:
        """One part's bytes into its file; its sha256 (the ETag the client hands back on complete)."""
        upload = self._upload(upload_id)
        if not DIGITS.fullmatch(number) or not 1 <= int(number) <= upload.parts:
            raise InvalidInput(f"Invalid part number {number[:20]!r}: 1 to {upload.parts}")
        n = int(number)
        target = upload.folder / f"{n}.part"
        out = await self._off_loop(HashingFile, target)
        try:
            await self._stream(chunks, length, out.write, lambda: out.size)
            await self._off_loop(out.close)
        except BaseException:
            await self._off_loop(out.discard)
            raise
        if upload_id not in self._uploads:  # aborted meanwhile: its folder is gone or going
            await self._off_loop(out.discard)
            raise NotFound("The multipart upload was aborted")
        upload.digests[n] = out.digest
        return out.digest

    async def complete_multipart(self, path: str, p: dict[str, Any]) -> dict[str, Any]:
        path = _destination(path, p)
        upload_id = p.get("upload_id")
        upload = self._upload(upload_id, path)  # type: ignore[arg-type]
        parts = p.get("parts") or []
        if not isinstance(parts, list) or not all(isinstance(x, dict) for x in parts):
            raise InvalidInput("Invalid value for 'parts': a list of {part_number, etag} objects")
        given = {}
        for part in parts:
            number = part.get("part_number")
            if not isinstance(number, int) or isinstance(number, bool) or number in given:
                raise InvalidInput(f"Invalid part number {str(number)[:20]!r}")
            given[number] = str(part.get("etag") or "")
        if sorted(given) != list(range(1, upload.parts + 1)):
            raise InvalidInput(f"The upload has {upload.parts} parts; complete named {sorted(given)[:20]}")
        for number, etag in given.items():
            have = upload.digests.get(number)
            if have is None:
                raise InvalidInput(f"Part {number} was never uploaded")
            if etag.strip('"') != have:
                raise InvalidInput(f"Part {number}'s ETag {etag[:80]!r} is not the digest of what arrived ({have})")
        del self._uploads[upload_id]  # type: ignore[arg-type]
        try:
            stored = await self._off_loop(self._assemble, upload)
        finally:
            await self._off_loop(shutil.rmtree, upload.folder, True)
        await remote.push(self.blobs, [stored.sha256])  # another daemon of the registry may serve it
        await self._record(path, stored.sha256, stored.size)
        return {}

    def _assemble(self, upload: _Upload) -> Any:
        """The parts, in order, hashed into one blob (blocking: runs in the pool)."""
        writer: BlobWriter = self.blobs.open_writer()
        try:
            buf = bytearray(CHUNK)
            for n in range(1, upload.parts + 1):
                with open(upload.folder / f"{n}.part", "rb", buffering=0) as f:
                    while k := f.readinto(buf):
                        writer.write(bytes(memoryview(buf)[:k]))
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    async def abort_multipart(self, path: str, p: dict[str, Any]) -> dict[str, Any]:
        path = _destination(path, p)
        upload = self._upload(p.get("upload_id"), path)  # type: ignore[arg-type]
        self._uploads.pop(p["upload_id"], None)
        await self._off_loop(shutil.rmtree, upload.folder, True)
        return {}

    async def reap(self, timeout: float = UPLOAD_TIMEOUT_S) -> int:
        """Remove the uploads older than ``timeout`` seconds; how many."""
        cutoff = time.monotonic() - timeout
        stale = [uid for uid, u in self._uploads.items() if u.created < cutoff]
        for uid in stale:
            upload = self._uploads.pop(uid)
            await self._off_loop(shutil.rmtree, upload.folder, True)
        return len(stale)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(min(600.0, UPLOAD_TIMEOUT_S / 4))
            await self.reap()


def _destination(folder: str, p: dict[str, Any]) -> str:
    """Where a multipart upload lands: the folder of the URL, the base name of the client's file."""
    local = p.get("path")
    if not isinstance(local, str) or not local:
        raise InvalidInput("Missing value for required parameter 'path' (the file being uploaded)")
    name = local.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return artifact_path(f"{folder}/{name}", writable=True)


def _registry_ref(path: str) -> tuple[str | None, str]:
    """``_registry/<model>/<version>/<sub>`` → (``model@version``, sub); (None, "") for the folders above."""
    parts = path.split("/")
    if len(parts) < 3 or not DIGITS.fullmatch(parts[2]):
        return None, ""
    return f"{parts[1]}@{parts[2]}", "/".join(parts[3:])
