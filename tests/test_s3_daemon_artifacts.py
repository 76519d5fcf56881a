"""The daemon with MODELREG_ARTIFACTS=s3://…: registered bytes land in a real SeaweedFS bucket under
their content keys, downloads come from presigned URLs, gc and verify look at the bucket (issue 13)."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from modelreg.shared.client import Client
from daemon_process import start_daemon
from s3_daemon_support import RecordingProxy, new_registry, same_origin, sha256_of


@pytest.fixture
def reg(s3_server, tmp_path):
    r = new_registry(s3_server, tmp_path / "home")
    r.start()
    yield r
    r.stop()


def weights(path: Path, seed: int, size: int = 300_000) -> bytes:
    data = (seed.to_bytes(4, "big") * (size // 4 + 1))[:size]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def registered_sha(reg, model: str, number: int = 1) -> str:
    return reg.json("show", f"{model}@{number}")["files"][0]["sha256"]


def test_a_registered_version_is_in_the_bucket_under_its_content_key(reg, tmp_path):
    data = weights(tmp_path / "src" / "model.bin", 1)
    reg.cli("register", str(tmp_path / "src" / "model.bin"), "--name", "fraud")
    sha = sha256_of(data)
    assert registered_sha(reg, "fraud") == sha
    assert reg.keys() == [reg.key(sha)]
    assert reg.server.client().get_object(Bucket=reg.bucket, Key=reg.key(sha))["Body"].read() == data

    status = reg.json("status")
    assert status["artifacts"] == {"backend": "s3", "url": f"s3://{reg.bucket}/team/reg",
                                   "endpoint": reg.server.endpoint, "region": "us-east-1"}
    assert reg.server.secret_key not in json.dumps(status)


def test_same_bytes_twice_are_one_object(reg, tmp_path):
    data = weights(tmp_path / "a" / "model.bin", 7)
    weights(tmp_path / "b" / "model.bin", 7)
    reg.cli("register", str(tmp_path / "a" / "model.bin"), "--name", "fraud")
    reg.cli("register", str(tmp_path / "b" / "model.bin"), "--name", "fraud-copy")
    reg.cli("register", str(tmp_path / "b" / "model.bin"), "--name", "fraud", "--upload")
    assert reg.keys() == [reg.key(sha256_of(data))]


async def test_downloads_come_from_a_presigned_url_not_through_the_daemon(reg, tmp_path):
    data = weights(tmp_path / "src" / "model.bin", 3)
    reg.cli("register", str(tmp_path / "src" / "model.bin"), "--name", "fraud")
    d = reg.daemon
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {d.token}"}) as http:
        async with http.get(f"{d.url}/v1/models/fraud/versions/1/files/model.bin", allow_redirects=False) as r:
            assert r.status == 307
            assert r.headers["X-Content-SHA256"] == sha256_of(data)
            location = r.headers["Location"]
    assert same_origin(location, reg.server.endpoint) and "X-Amz-Signature=" in location

    # The CLI and both clients get the same bytes (checked against the digest on their way).
    reg.cli("export", "fraud@1", str(tmp_path / "exported"))
    assert (tmp_path / "exported" / "model.bin").read_bytes() == data
    async with Client(url=d.url, token=d.token) as c:
        await c.download("fraud@1", "model.bin", tmp_path / "async.bin")
    assert (tmp_path / "async.bin").read_bytes() == data

    # With the daemon gone, the URL still serves the bytes: they never passed through it.
    reg.stop()
    with urllib.request.urlopen(location, timeout=30) as r:
        assert r.read() == data


def test_the_token_never_reaches_s3(s3_server, tmp_path):
    """Every client our code has (the CLI's, the async client, resolve --path on another machine)
    fetches the presigned URL without our token: a proxy in front of S3 sees every request."""
    with RecordingProxy(s3_server.endpoint) as proxy:
        reg = new_registry(s3_server, tmp_path / "home")
        d = start_daemon(reg.home, env={**reg.env, "AWS_ENDPOINT_URL_S3": proxy.url})
        try:
            data = weights(tmp_path / "src" / "model.bin", 4)
            reg.cli("register", str(tmp_path / "src" / "model.bin"), "--name", "fraud")
            reg.cli("export", "fraud@1", str(tmp_path / "exported"))
            remote = {"MODELREG_URL": d.url, "MODELREG_TOKEN": d.token, "MODELREG_CACHE_DIR": str(tmp_path / "c")}
            folder = Path(reg.cli("resolve", "fraud@1", "--path", env=remote).stdout.strip())

            async def download() -> None:
                async with Client(url=d.url, token=d.token) as c:
                    await c.download("fraud@1", "model.bin", tmp_path / "async.bin")
            asyncio.run(download())
        finally:
            d.stop()
    assert (tmp_path / "exported" / "model.bin").read_bytes() == data
    assert (folder / "model.bin").read_bytes() == data and (tmp_path / "async.bin").read_bytes() == data
    presigned = [headers for method, target, headers in proxy.seen if method == "GET" and "X-Amz-Signature=" in target]
    assert len(presigned) == 3
    assert not [h for h in presigned if "Authorization" in h]
    # Everything else the daemon sent S3 was signed with the S3 key, never with our token.
    assert d.token not in json.dumps(proxy.seen)


def test_gc_removes_an_unreferenced_object_and_keeps_a_referenced_one(reg, tmp_path):
    gone = sha256_of(weights(tmp_path / "a" / "model.bin", 10))
    kept = sha256_of(weights(tmp_path / "b" / "model.bin", 11))
    reg.cli("register", str(tmp_path / "a" / "model.bin"), "--name", "fraud")
    reg.cli("register", str(tmp_path / "b" / "model.bin"), "--name", "fraud")
    assert reg.keys() == sorted([reg.key(gone), reg.key(kept)])
    reg.cli("delete", "fraud@1", "--reason", "superseded")
    reg.cli("gc")
    assert reg.keys() == [reg.key(kept)]
    assert not reg.local_blob(gone).exists() and reg.local_blob(kept).exists()


def test_verify_catches_an_object_deleted_or_corrupted_behind_our_back(reg, tmp_path):
    first = weights(tmp_path / "a" / "model.bin", 20)
    second = weights(tmp_path / "b" / "model.bin", 21)
    reg.cli("register", str(tmp_path / "a" / "model.bin"), "--name", "fraud")
    reg.cli("register", str(tmp_path / "b" / "model.bin"), "--name", "fraud")
    assert reg.cli("verify", "--json", check=False).returncode == 0

    s3 = reg.server.client()
    s3.delete_object(Bucket=reg.bucket, Key=reg.key(sha256_of(first)))
    flipped = bytearray(second)
    flipped[1000] ^= 1
    s3.put_object(Bucket=reg.bucket, Key=reg.key(sha256_of(second)), Body=bytes(flipped))

    out = reg.cli("verify", "--json", check=False)
    assert out.returncode != 0
    problems = {p["sha256"]: (p["status"], p["where"], p["versions"]) for p in json.loads(out.stdout)["problems"]}
    assert problems == {sha256_of(first): ("missing", "s3", ["fraud@1"]),
                        sha256_of(second): ("corrupt", "s3", ["fraud@2"])}


def test_a_blob_this_daemon_lacks_is_fetched_from_s3(reg, tmp_path):
    """As for a version another daemon registered: the serving folder and `resolve --path` work."""
    data = weights(tmp_path / "src" / "model.bin", 30)
    reg.cli("register", str(tmp_path / "src" / "model.bin"), "--name", "fraud")
    blob = reg.local_blob(sha256_of(data))
    blob.unlink()
    folder = Path(reg.cli("resolve", "fraud@1", "--path").stdout.strip())
    assert (folder / "model.bin").read_bytes() == data
    assert blob.read_bytes() == data  # kept as the local cache


def test_resolve_path_on_another_machine_downloads_into_a_local_cache(reg, tmp_path):
    data = weights(tmp_path / "src" / "model.bin", 40)
    reg.cli("register", str(tmp_path / "src" / "model.bin"), "--name", "fraud")
    remote = {"MODELREG_URL": reg.daemon.url, "MODELREG_TOKEN": reg.daemon.token,
              "MODELREG_CACHE_DIR": str(tmp_path / "cache"), "MODELREG_HOME": str(tmp_path / "elsewhere")}
    folder = Path(reg.cli("resolve", "fraud@1", "--path", env=remote).stdout.strip())
    assert folder.is_relative_to(tmp_path / "cache")
    assert (folder / "model.bin").read_bytes() == data
    assert (folder / "model.bin").stat().st_mode & 0o222 == 0  # read-only, as the daemon's own folders
    # A second resolve finds the folder: the same path, nothing downloaded again.
    assert Path(reg.cli("resolve", "fraud@1", "--path", env=remote).stdout.strip()) == folder


def test_uploaded_files_are_in_s3_before_the_version_is_ready(reg, tmp_path):
    data = weights(tmp_path / "up" / "model.bin", 50)
    reg.cli("register", str(tmp_path / "up" / "model.bin"), "--name", "fraud", "--upload")
    assert reg.json("show", "fraud@1")["status"] == "ready"
    assert reg.keys() == [reg.key(sha256_of(data))]


async def test_mlflow_artifact_download_follows_the_presigned_url(reg, tmp_path):
    import requests  # what mlflow's artifact repository downloads with

    d = reg.daemon
    data = os.urandom(200_000)
    base = f"{d.url}/api/2.0/mlflow-artifacts/artifacts/exp1/run1/model.pkl"
    auth = {"Authorization": f"Bearer {d.token}"}
    assert (await asyncio.to_thread(requests.put, base, data=data, headers=auth, timeout=30)).status_code == 200
    assert reg.keys() == [reg.key(sha256_of(data))]
    r = await asyncio.to_thread(requests.get, base, headers=auth, timeout=30)
    assert r.status_code == 200 and r.content == data
    assert same_origin(r.url, reg.server.endpoint) and "Authorization" not in r.request.headers


def test_a_short_object_under_the_content_key_is_replaced_not_trusted(reg, tmp_path):
    """An upload cut off mid-body can leave a short object under the key: dedup checks the size."""
    data = weights(tmp_path / "src" / "model.bin", 60)
    sha = sha256_of(data)
    reg.server.client().put_object(Bucket=reg.bucket, Key=reg.key(sha), Body=data[:1000])
    reg.cli("register", str(tmp_path / "src" / "model.bin"), "--name", "fraud")
    assert reg.server.client().get_object(Bucket=reg.bucket, Key=reg.key(sha))["Body"].read() == data
