"""The S3 blob store against a real SeaweedFS (tests/s3_server.py): what a team's registry relies on."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import urllib.error
import urllib.request
import uuid

import pytest

from modelreg.daemon.artifacts.s3 import S3BlobStore, parse_s3_config
from modelreg.shared.errors import DigestMismatch, InvalidInput, ModelregError, NotFound, Unavailable
from waiting import wait_until

PREFIX = "team/registry"


@pytest.fixture
def bucket(s3_server) -> str:
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(name)
    return name


@pytest.fixture
async def store(s3_server, bucket):
    async with S3BlobStore(parse_s3_config(f"s3://{bucket}/{PREFIX}", s3_server.env(""))) as s:
        yield s


def write(path, data: bytes):
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def keys(s3_server, bucket) -> list[str]:
    return [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def pending_uploads(s3_server, bucket) -> list:
    return s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def fetch(url: str) -> bytes:
    """Plain urllib: the bytes come from the S3 server, through no modelreg code."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


async def test_round_trip_under_the_content_key(store, s3_server, bucket, tmp_path):
    path, sha = write(tmp_path / "weights.bin", b"0123456789" * 1000)

    assert await store.put_file(path) == sha
    assert keys(s3_server, bucket) == [f"{PREFIX}/sha256/{sha[:2]}/{sha[2:]}"]
    assert await store.exists(sha) and await store.size(sha) == 10_000
    assert await store.get(sha) == path.read_bytes()
    assert b"".join([c async for c in store.open_range(sha, 5, 25)]) == path.read_bytes()[5:25]
    assert [d async for d in store.list()] == [sha]

    assert await store.delete(sha) is True
    assert not await store.exists(sha) and await store.size(sha) is None
    assert await store.delete(sha) is False
    with pytest.raises(NotFound):
        await store.get(sha)


async def test_an_empty_file_round_trips(store, tmp_path):
    path, sha = write(tmp_path / "empty", b"")
    assert await store.put_file(path, sha) == sha
    assert await store.size(sha) == 0 and await store.get(sha) == b""


async def test_stored_content_is_not_uploaded_again(store, s3_server, bucket, tmp_path):
    path, sha = write(tmp_path / "a.bin", os.urandom(4096))
    await store.put_file(path)
    # Replace the object behind the store's back (same size): a second put that uploaded would overwrite it.
    sentinel = b"s" * 4096
    s3_server.client().put_object(Bucket=bucket, Key=store.key(sha), Body=sentinel)
    copy, _ = write(tmp_path / "b.bin", path.read_bytes())

    assert await store.put_file(copy) == sha
    assert await store.get(sha) == sentinel
    assert len(keys(s3_server, bucket)) == 1


async def test_a_short_object_under_the_key_is_uploaded_again(store, s3_server, bucket, tmp_path):
    """What a PUT cut off mid-body can leave (SeaweedFS keeps it): not trusted as the blob."""
    data = os.urandom(4096)
    path, sha = write(tmp_path / "a.bin", data)
    s3_server.client().put_object(Bucket=bucket, Key=store.key(sha), Body=data[:100])

    assert await store.put_file(path) == sha
    assert await store.get(sha) == data


async def test_a_40_mib_multipart_upload_downloads_byte_identical_from_a_presigned_url(store, s3_server, bucket, tmp_path):
    path, sha = write(tmp_path / "model.safetensors", os.urandom(40 * 1024 * 1024))

    assert await store.put_file(path) == sha
    etag = s3_server.client().head_object(Bucket=bucket, Key=store.key(sha))["ETag"]
    assert etag.strip('"').endswith("-5")  # 5 parts of 8 MiB: it really went multipart
    assert pending_uploads(s3_server, bucket) == []

    body = await asyncio.to_thread(fetch, await store.presigned_url(sha, expires=300))
    assert len(body) == 40 * 1024 * 1024 and hashlib.sha256(body).hexdigest() == sha


@pytest.mark.parametrize("size", [1000, 20 * 1024 * 1024], ids=["single-put", "multipart"])
async def test_bytes_that_do_not_match_their_digest_leave_nothing(store, s3_server, bucket, tmp_path, size):
    path, _ = write(tmp_path / "changed.bin", os.urandom(size))
    claimed = hashlib.sha256(b"what the caller hashed earlier").hexdigest()

    with pytest.raises(DigestMismatch) as caught:
        await store.put_file(path, claimed)

    assert caught.value.details["expected"] == claimed
    assert not await store.exists(claimed)
    assert keys(s3_server, bucket) == [] and pending_uploads(s3_server, bucket) == []


async def test_an_expired_presigned_url_is_refused(store, tmp_path):
    path, sha = write(tmp_path / "m.bin", b"model bytes")
    await store.put_file(path)
    url = await store.presigned_url(sha, expires=1)

    def refused() -> int | None:
        try:
            fetch(url)
        except urllib.error.HTTPError as exc:
            return exc.code
        return None

    assert await asyncio.to_thread(wait_until, refused, 15, "the presigned URL to expire", 0.2) == 403
    assert await asyncio.to_thread(fetch, await store.presigned_url(sha, expires=60)) == b"model bytes"


async def test_bad_arguments_are_clear_errors(store, tmp_path):
    with pytest.raises(InvalidInput, match="not a sha256"):
        await store.exists("../../etc/passwd")
    with pytest.raises(InvalidInput, match="1 s to 7 days"):
        await store.presigned_url("a" * 64, expires=30 * 24 * 3600)
    with pytest.raises(FileNotFoundError):
        await store.put_file(tmp_path / "missing")


async def test_wrong_credentials_name_the_variables_to_check(s3_server, bucket, tmp_path):
    env = {**s3_server.env(""), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    path, _ = write(tmp_path / "m.bin", b"x")
    async with S3BlobStore(parse_s3_config(f"s3://{bucket}/p", env)) as store:
        with pytest.raises(ModelregError, match="AWS_SECRET_ACCESS_KEY"):
            await store.put_file(path)


async def test_a_missing_bucket_is_named(s3_server):
    async with S3BlobStore(parse_s3_config("s3://no-such-bucket-here/p", s3_server.env(""))) as store:
        with pytest.raises(NotFound, match="bucket 'no-such-bucket-here' at .* does not exist"):
            await store.get("a" * 64)


async def test_an_unreachable_endpoint_is_unavailable(s3_server, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    env = {**s3_server.env(""), "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
    async with S3BlobStore(parse_s3_config("s3://bucket/p", env)) as store:
        with pytest.raises(Unavailable, match="unreachable"):
            await store.exists("a" * 64)


async def test_a_cancelled_upload_is_aborted(store, s3_server, bucket, tmp_path):
    path, sha = write(tmp_path / "big.bin", os.urandom(40 * 1024 * 1024))
    upload = asyncio.create_task(store.put_file(path, sha))
    await asyncio.to_thread(wait_until, lambda: upload.done() or pending_uploads(s3_server, bucket), 30,
                            "the multipart upload to start")
    assert not upload.done()

    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert pending_uploads(s3_server, bucket) == [] and not await store.exists(sha)

