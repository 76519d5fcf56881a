"""Two daemons on one registry (issue 13): one database on a real PostgreSQL 15 server, one
bucket on a real SeaweedFS, and a home of its own for each daemon (its token, its log), as two
workstations sharing a team registry would run them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_support import Cluster, start_cluster
from pg_server import pg_dsn, pg_server  # noqa: F401 - the session's PostgreSQL (tests/pg_server.py)


@pytest.fixture
async def cluster(pg_dsn: str, s3_server, tmp_path: Path) -> AsyncIterator[Cluster]:  # noqa: F811
    bucket = f"c-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(bucket)
    c = start_cluster(tmp_path, {"MODELREG_DATABASE": pg_dsn, **s3_server.env(f"s3://{bucket}/team")})
    yield c
    c.stop()
