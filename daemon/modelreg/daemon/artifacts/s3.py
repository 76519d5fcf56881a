"""Content-addressed blob store on S3-compatible object storage (issue 13; PRODUCT.md §5, §12).

Keys are ``PREFIX/sha256/ab/cdef…``, the local store's layout. Configured by
``MODELREG_ARTIFACTS=s3://bucket/prefix`` plus the usual AWS variables (``parse_s3_config``).
The daemon uses it through ``artifacts/remote.py`` (S3 is the source of truth, the local
store its staging area and cache).

Visibility rule: an object exists under a content key only once its bytes hashed to that key.
The key has to be known before the upload starts (a HEAD on it is the dedup, and a multipart
upload is opened on its final key), so ``put_file`` takes the digest the caller already has
(ingest hashes every file) or hashes the file first. The bytes are hashed again while they are
sent, and the upload is only *completed* when that digest matches: a multipart upload stays
invisible until CompleteMultipartUpload, and is aborted otherwise; a small file is read into
memory, hashed and only then PUT. No temp key and no server-side copy of gigabytes.

aiobotocore runs on the daemon's event loop (it is aiohttp); file reads and hashing go to a
thread. What still runs on the loop, measured against SeaweedFS on a busy 2-core machine:
opening the client (~0.5 s, botocore loads its S3 model; once, at start-up) and 20-60 ms per
8 MiB part (botocore SHA-256-signs every body sent over plain HTTP, then aiohttp writes it;
over HTTPS the payload goes unsigned).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from modelreg.daemon.artifacts.blobs import hash_file
from modelreg.shared.errors import DigestMismatch, InvalidInput, ModelregError, NotFound, Unavailable

PART_SIZE = 8 * 1024 * 1024     # S3's minimum part is 5 MiB; 8 MiB keeps 2 GB under 250 parts
MAX_PARTS = 10_000              # S3's limit: larger files get larger parts
PARTS_IN_FLIGHT = 4             # parts sent at once: one connection alone leaves the server waiting
READ_CHUNK = 1024 * 1024        # one read of a ranged download
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str                   # no leading or trailing "/"; "" for the bucket's root
    endpoint_url: str | None      # None: AWS itself
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def parse_s3_config(url: str, env: Mapping[str, str] | None = None) -> S3Config:
    """``s3://bucket/prefix`` plus AWS_* variables from ``env`` (default os.environ); InvalidInput says what is wrong."""
    env = os.environ if env is None else env
    parts = urlsplit(url.strip())
    if parts.scheme != "s3":
        raise InvalidInput(f"MODELREG_ARTIFACTS={url!r}: an S3 artifact store is written s3://BUCKET/PREFIX")
    if parts.query or parts.fragment or parts.username or parts.password or parts.port:
        raise InvalidInput(f"MODELREG_ARTIFACTS={url!r}: only s3://BUCKET/PREFIX; the endpoint and "
                           "credentials come from AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    bucket = parts.hostname or ""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInput(f"MODELREG_ARTIFACTS={url!r}: {bucket!r} is not an S3 bucket name "
                           "(3-63 lowercase letters, digits, dots and hyphens)")
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments) or any(ord(c) < 32 for c in parts.path):
        raise InvalidInput(f"MODELREG_ARTIFACTS={url!r}: the prefix may not contain '.', '..' or control characters")

    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname or ep.path not in ("", "/") or ep.query:
            raise InvalidInput(f"AWS_ENDPOINT_URL_S3={endpoint!r}: expected http(s)://HOST[:PORT]")
        endpoint = endpoint.rstrip("/")
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        missing = " and ".join(n for n, v in (("AWS_ACCESS_KEY_ID", key_id), ("AWS_SECRET_ACCESS_KEY", secret)) if not v)
        raise InvalidInput(f"MODELREG_ARTIFACTS={url!r} needs S3 credentials: set {missing}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    return S3Config(bucket=bucket, prefix="/".join(segments), endpoint_url=endpoint, region=region,
                    access_key_id=key_id, secret_access_key=secret,
                    session_token=env.get("AWS_SESSION_TOKEN") or None)


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int
    uploaded: float  # the object's LastModified, as a Unix time


def _check_digest(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256 digest (64 lowercase hex digits)")
    return sha256


class S3BlobStore:
    """The blob store's operations on a bucket; ``async with S3BlobStore(config) as store``."""

    def __init__(self, config: S3Config, *, part_size: int = PART_SIZE) -> None:
        self.config = config
        self.part_size = part_size
        self._root = f"{config.prefix}/sha256/" if config.prefix else "sha256/"
        self._stack = AsyncExitStack()
        self._client = None

    async def __aenter__(self) -> S3BlobStore:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> None:
        c = self.config
        botocore_config = AioConfig(
            # Path-style: a custom endpoint (SeaweedFS, MinIO) on an IP has no per-bucket host names.
            s3={"addressing_style": "path" if c.endpoint_url else "auto"},
            signature_version="s3v4",  # presigned URLs too: botocore would sign them SigV2, which newer regions refuse
            # Our own sha256 guards the bytes; botocore's extra CRC32 would be one more pass on the loop.
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        self._client = await self._stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=c.endpoint_url, region_name=c.region, aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key, aws_session_token=c.session_token, config=botocore_config))

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    def key(self, sha256: str) -> str:
        sha256 = _check_digest(sha256)
        return f"{self._root}{sha256[:2]}/{sha256[2:]}"

    # -- reading ---------------------------------------------------------------------------

    async def size(self, sha256: str) -> int | None:
        """The stored blob's size, or None when it is not stored."""
        key = self.key(sha256)
        try:
            head = await self._client.head_object(Bucket=self.config.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:  # a HEAD answer has no body: a missing bucket looks the same
                return None
            raise self._error(exc, f"looking up {key}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, f"looking up {key}") from None
        return int(head["ContentLength"])

    async def exists(self, sha256: str) -> bool:
        return await self.size(sha256) is not None

    async def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The blob's bytes ``[start, end)`` (to its end when ``end`` is None), in chunks."""
        if start < 0 or (end is not None and end <= start):
            raise InvalidInput(f"bad byte range [{start}, {end})")
        key = self.key(sha256)
        # No Range for the whole blob: "bytes=0-" of an empty object is refused as unsatisfiable.
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-" + ("" if end is None else str(end - 1))}
        async with self._call(f"reading {key}"):
            response = await self._client.get_object(Bucket=self.config.bucket, Key=key, **ranged)
        async with response["Body"] as body:
            async with self._call(f"reading {key}"):
                while chunk := await body.read(READ_CHUNK):
                    yield chunk

    async def get(self, sha256: str) -> bytes:
        """The whole blob in memory: for small blobs (manifests, cards); stream big ones with open_range."""
        return b"".join([chunk async for chunk in self.open_range(sha256)])

    async def presigned_url(self, sha256: str, expires: int = 3600) -> str:
        """A GET URL for the blob that needs no credentials, valid ``expires`` seconds (1 s … 7 days)."""
        if not 1 <= expires <= 7 * 24 * 3600:
            raise InvalidInput(f"a presigned URL lives 1 s to 7 days, not {expires} s")
        return await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.config.bucket, "Key": self.key(sha256)}, ExpiresIn=expires)

    async def list(self) -> AsyncIterator[str]:
        """Every stored blob's sha256, in key order (paged by S3)."""
        async for obj in self.list_objects():
            yield obj.sha256

    async def list_objects(self) -> AsyncIterator[StoredObject]:
        """Every stored blob with its size and upload time, in key order (paged by S3)."""
        paginator = self._client.get_paginator("list_objects_v2")
        async with self._call(f"listing {self._root}"):
            async for page in paginator.paginate(Bucket=self.config.bucket, Prefix=self._root):
                for obj in page.get("Contents", []):
                    rest = obj["Key"][len(self._root):]
                    digest = rest.replace("/", "", 1)
                    if rest[2:3] == "/" and _SHA256.match(digest):  # foreign keys under the prefix are not blobs
                        yield StoredObject(digest, int(obj["Size"]), obj["LastModified"].timestamp())

    async def check_bucket(self) -> None:
        """Start-up: the bucket exists and these credentials may use it, else one sentence saying which."""
        try:
            await self._client.head_bucket(Bucket=self.config.bucket)
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:  # a HEAD answer has no body, hence no NoSuchBucket code
                raise NotFound(f"S3: bucket {self.config.bucket!r} at {self.config.endpoint_url or 'AWS'} does "
                               "not exist; create it first", {"bucket": self.config.bucket}) from None
            raise self._error(exc, "opening the bucket") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "opening the bucket") from None

    # -- writing ---------------------------------------------------------------------------

    async def delete(self, sha256: str) -> bool:
        """Remove the blob; False when it was not stored."""
        if not await self.exists(sha256):
            return False
        async with self._call(f"deleting {self.key(sha256)}"):
            await self._client.delete_object(Bucket=self.config.bucket, Key=self.key(sha256))
        return True

    async def put_file(self, path: Path, sha256: str | None = None) -> str:
        """Store the file's bytes under their sha256 (returned); a blob stored whole is not uploaded again.

        ``sha256`` is the digest the caller already computed; without it the file is hashed
        first (in a thread). Bytes that do not hash to it raise DigestMismatch and leave
        nothing under the content key.
        """
        path = Path(path)
        if sha256 is None:
            sha256, _ = await asyncio.to_thread(hash_file, path)
        key = self.key(sha256)
        size = (await asyncio.to_thread(os.stat, path)).st_size
        # Stored already only at its full size: a PUT cut off mid-body (a cancelled upload) can
        # leave a short object under the content key on some servers (SeaweedFS does).
        if await self.size(sha256) == size:
            return sha256
        if size <= self.part_size:
            await self._put_small(path, key, sha256)
        else:
            await self._put_multipart(path, key, sha256, size)
        return sha256

    async def _put_small(self, path: Path, key: str, sha256: str) -> None:
        def read() -> tuple[bytes, str]:
            data = path.read_bytes()
            return data, hashlib.sha256(data).hexdigest()

        data, actual = await asyncio.to_thread(read)
        _expect(actual, sha256, path)
        async with self._call(f"uploading {key}"):
            await self._client.put_object(Bucket=self.config.bucket, Key=key, Body=data)

    async def _put_multipart(self, path: Path, key: str, sha256: str, size: int) -> None:
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        bucket = self.config.bucket
        async with self._call(f"uploading {key}"):
            upload_id = (await self._client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
        try:
            hasher = hashlib.sha256()
            with open(path, "rb") as f:
                def read_part() -> bytes:
                    data = f.read(part_size)
                    hasher.update(data)  # in order: parts are read one after the other
                    return data

                etags: dict[int, str] = {}

                async def send(number: int, data: bytes) -> None:
                    async with self._call(f"uploading {key}"):
                        answer = await self._client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                                                PartNumber=number, Body=data)
                    etags[number] = answer["ETag"]

                sending: set[asyncio.Future[None]] = set()
                pending = asyncio.ensure_future(asyncio.to_thread(read_part))
                try:
                    number = 1
                    while data := await pending:
                        # The next part is read and hashed while earlier ones are on the wire.
                        pending = asyncio.ensure_future(asyncio.to_thread(read_part))
                        while len(sending) >= PARTS_IN_FLIGHT:
                            done, sending = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                            for sent in done:
                                sent.result()  # the first failure stops the upload
                        sending.add(asyncio.ensure_future(send(number, data)))
                        number += 1
                    await asyncio.gather(*sending)
                finally:
                    for sent in sending:
                        sent.cancel()
                    # The reading thread must be done before the file closes under it.
                    await asyncio.gather(pending, *sending, return_exceptions=True)
                parts = [{"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]
            _expect(hasher.hexdigest(), sha256, path)
            async with self._call(f"uploading {key}"):
                await self._client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                             MultipartUpload={"Parts": parts})
        except BaseException:
            # Also on cancellation: an unfinished upload holds storage until aborted.
            await asyncio.shield(self._abort(key, upload_id))
            raise

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(Bucket=self.config.bucket, Key=key, UploadId=upload_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            pass  # the bucket's lifecycle rule for incomplete uploads is the backstop

    # -- errors ----------------------------------------------------------------------------

    def _call(self, doing: str) -> _Translate:
        return _Translate(self, doing)

    def _error(self, exc: Exception, doing: str) -> ModelregError:
        where = f"bucket {self.config.bucket!r} at {self.config.endpoint_url or 'AWS'}"
        if isinstance(exc, botocore.exceptions.ClientError):
            code, status = _code(exc), _status(exc)
            if code == "NoSuchBucket":
                return NotFound(f"S3: {where} does not exist ({doing})", {"bucket": self.config.bucket})
            if code == "NoSuchKey" or (status == 404 and code in ("404", "NotFound")):
                return NotFound(f"S3: {doing}: no such object in {where}")
            if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return ModelregError(f"S3 refused {doing} in {where} ({code}): check AWS_ACCESS_KEY_ID, "
                                     "AWS_SECRET_ACCESS_KEY and the key's permissions", {"code": code})
            return ModelregError(f"S3 error {doing} in {where}: {code} {exc}", {"code": code})
        return Unavailable(f"S3 unreachable {doing} in {where}: {exc}")


class _Translate:
    """Turns botocore's errors inside the block into our hierarchy with a message that names the bucket."""

    def __init__(self, store: S3BlobStore, doing: str) -> None:
        self.store, self.doing = store, doing

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
            raise self.store._error(exc, self.doing) from None
        return False


def _expect(actual: str, expected: str, path: Path) -> None:
    if actual != expected:
        raise DigestMismatch(f"{path} hashes to {actual}, not {expected}: nothing was stored",
                             {"expected": expected, "actual": actual})


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
