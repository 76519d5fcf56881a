"""Issue 13, acceptance 3 (SLOW, ~2-4 min): a 2 GB file registered through daemon A downloads
through daemon B from a presigned URL, byte-identical, without passing through either daemon.

A and B are two homes on one real PostgreSQL database and one real S3 bucket (SeaweedFS): a
team's two workstations. The file's bytes reach the bucket through A (its registration);
B only answers the download with a 307 to the bucket, and never holds the blob itself.
"""

from __future__ import annotations

import hashlib
import time

import aiohttp
import pytest

from daemon_process import start_daemon
from pg_server import pg_dsn, pg_server  # noqa: F401 - the fixtures
from s3_daemon_support import S3Registry, new_registry, same_origin
from test_s3_daemon_large import BLOCK, SIZE, generate, timed

pytestmark = pytest.mark.sqlite_only(reason="starts its own PostgreSQL and two daemons on it: runs once, here")


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.slow
async def test_a_2gb_file_registered_through_a_downloads_through_b_from_a_presigned_url(s3_server, pg_dsn, tmp_path):  # noqa: F811
    src = tmp_path / "src" / "big.bin"
    src.parent.mkdir()
    sha = generate(src)
    a = new_registry(s3_server, tmp_path / "a")
    b = S3Registry(tmp_path / "b", a.bucket, s3_server)  # the same bucket …
    team = {"MODELREG_DATABASE": pg_dsn}  # … and the same database
    a.daemon = start_daemon(a.home, env={**a.env, **team})
    b.daemon = start_daemon(b.home, env={**b.env, **team})
    try:
        up = timed(lambda: a.cli("register", str(src), "--name", "big", timeout=900))
        assert a.json("show", "big@1")["status"] == "ready"

        # B answers with the bucket's presigned URL, not with bytes.
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {b.daemon.token}"}) as http:
            async with http.get(f"{b.daemon.url}/v1/models/big/versions/1/files/big.bin",
                                allow_redirects=False) as r:
                assert r.status == 307, await r.text()
                location = r.headers["Location"]
        assert same_origin(location, s3_server.endpoint) and "X-Amz-Signature=" in location

        start = time.perf_counter()
        b.cli("export", "big@1", str(tmp_path / "out"), timeout=900)
        down = time.perf_counter() - start
        out = tmp_path / "out" / "big.bin"
        assert out.stat().st_size == SIZE and _sha256(out) == sha
        # The bytes never passed through B: it does not hold the blob, not even in its cache.
        assert not b.local_blob(sha).exists()
        assert b.json("status")["store"]["backend"] == "postgresql"
    finally:
        a.stop()
        b.stop()
    mb = SIZE / 1e6
    print(f"\n2 GB through A into S3: {up:.1f} s = {mb / up:.0f} MB/s; "
          f"through B from the presigned URL: {down:.1f} s = {mb / down:.0f} MB/s")
