"""Two daemons on one registry: a real PostgreSQL 15 database and a real SeaweedFS bucket, two
homes, the same drop folder visible to both (they run on this machine)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lease_support import LEASE, Cluster
from pg_server import pg_server  # noqa: F401 - the session's PostgreSQL (tests/pg_server.py)


@pytest.fixture
def cluster(pg_server, s3_server, tmp_path: Path) -> Iterator[Cluster]:  # noqa: F811
    bucket = f"l-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(bucket)
    env = {"MODELREG_DATABASE": asyncio.run(pg_server.create_database()),
           **s3_server.env(f"s3://{bucket}/team"), "MODELREG_WATCH_LEASE": f"{LEASE:g}", "MODELREG_WATCH_RENEW": "1"}
    c = Cluster(tmp_path, env)
    yield c
    c.close()

