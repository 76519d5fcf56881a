"""Models and versions as clients read them: model pages and views, creating a model, a
version's detail, the compact resolve answer CI/CD wants, file downloads and model cards.

No SQL here (``store.catalog``) and no HTTP (``api/``): each function is one store call plus
the decisions around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict, IntegrityError, InvalidInput, NotFound
from modelreg.shared.names import Ref, parse_ref, validate_relpath

from ..artifacts import remote
from ..artifacts.blobs import BlobStore
from ..payloads import parse_model_create
from ..store import Store
from ..store.records import DEFAULT_PAGE, FileRecord

CARD_NAMES = ("readme.md",)  # matched case-insensitively, at the version's root
MAX_CARD_BYTES = 1_000_000  # a card is prose; a larger README is not shown inline

Materialise = Callable[[int, str, int, list[FileRecord]], Awaitable[Path]]

__all__ = ["DEFAULT_PAGE", "card", "create_model", "download", "get_model", "get_version", "list_models",
           "page_versions", "ref_of", "resolve"]


def ref_of(name: str, selector: str) -> Ref:
    """The ref a ``/models/{name}/versions/{selector}`` path names."""
    return parse_ref(f"{name}@{selector}")


async def list_models(store: Store, *, query: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
    return await store.catalog.list_models(query=query, limit=limit, cursor=cursor)


async def get_model(store: Store, name: str) -> dict[str, Any]:
    return await store.catalog.get_model(name)


async def create_model(store: Store, data: Any, actor: str) -> dict[str, Any]:
    m = parse_model_create(data)
    return await store.catalog.create_model(m.name, m.description, m.tags, m.directions, actor)


async def page_versions(store: Store, model: str, *, stage: str | None, status: str | None, tags: list[str],
                        metric_filters: list[str], order: str, limit: int | None,
                        cursor: str | None) -> dict[str, Any]:
    return await store.catalog.page_versions(model, stage=stage, status=status, tags=tags,
                                             metric_filters=metric_filters, order=order, limit=limit, cursor=cursor)


async def get_version(store: Store, ref: Ref | str) -> dict[str, Any]:
    """A version's full detail: one read."""
    return await store.catalog.get_version(ref)


async def resolve(store: Store, ref: str, *, want_path: bool, materialise: Materialise) -> dict[str, Any]:
    """Which version, which digest, which files; with ``want_path`` a read-only folder of them."""
    rec, files = await store.catalog.resolve_with_files(ref)
    out = {"ref": rec.ref, "model": rec.model_name, "version": rec.number, "stage": rec.stage,
           "status": rec.status, "content_digest": rec.content_digest, "files": files}
    if want_path:
        if rec.status != "ready" or rec.purged_at:
            raise Conflict(f"{rec.ref} has no files to point at (status {rec.status}"
                           + (", purged by gc)" if rec.purged_at else ")"))
        # A read-only folder of the version's files, hardlinked from the store (no copy).
        records = [FileRecord(path=f["path"], sha256=f["sha256"], size=f["size"]) for f in files]
        out["path"] = str(await materialise(rec.id, rec.model_name, rec.number, records))
    return out


async def download(store: Store, blobs: BlobStore, pool: Executor, ref: Ref, path: str) -> tuple[str, Path | str]:
    """One file of a version: its sha256, and where its bytes are: the local blob, or (with S3)
    a presigned URL the client fetches them from, not through the daemon."""
    path = validate_relpath(path)
    rec, entry = await store.catalog.file_entry(ref, path)
    if entry is None:
        raise NotFound(f"{rec.ref} has no file {path!r}")
    if rec.purged_at:
        raise Conflict(f"{rec.ref}'s files were removed by gc after its retention period")
    return entry["sha256"], await blob_source(blobs, pool, entry["sha256"], path)


async def blob_source(blobs: BlobStore, pool: Executor, sha256: str, shown: str) -> Path | str:
    """The presigned URL of a blob in S3, else its local file (IntegrityError when it is gone:
    one HEAD first, so a lost object is our clear error, not S3's XML at the end of a redirect)."""
    if blobs.remote is not None:
        if await blobs.remote.s3.size(sha256) is None:
            raise IntegrityError(f"the stored bytes of {shown!r} are missing from the bucket; run `modelreg verify`")
        return await blobs.remote.url(sha256)
    blob = blobs.path(sha256)
    if not await asyncio.get_running_loop().run_in_executor(pool, blob.is_file):
        raise IntegrityError(f"the stored bytes of {shown!r} are missing; run `modelreg verify`")
    return blob


async def card(store: Store, blobs: BlobStore, pool: Executor, ref: Ref) -> dict[str, Any]:
    """A version's model card: the text of its README.md (PRODUCT.md §7)."""
    rec, files = await store.catalog.resolve_with_files(ref)
    entry = next((f for f in files if f["path"].lower() in CARD_NAMES), None)
    if entry is None:
        raise NotFound(f"{rec.ref} has no model card (no README.md among its files)", {"ref": rec.ref})
    if rec.purged_at:
        raise Conflict(f"{rec.ref}'s files were removed by gc after its retention period")
    if entry["size"] > MAX_CARD_BYTES:
        raise InvalidInput(f"{rec.ref}'s {entry['path']} is {entry['size']} bytes, more than a card shown inline "
                           f"({MAX_CARD_BYTES}); export the version to read it")
    await remote.fetch(blobs, [entry["sha256"]])
    try:
        raw = await asyncio.get_running_loop().run_in_executor(pool, blobs.path(entry["sha256"]).read_bytes)
    except FileNotFoundError:
        raise IntegrityError(f"the stored bytes of {entry['path']!r} are missing; run `modelreg verify`") from None
    return {"ref": rec.ref, "path": entry["path"], "text": raw.decode("utf-8", errors="replace")}
