"""kill -9 of the daemon while it stores a 1 GB file, then restart (issue 2, acceptance 6)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import team_backend
from big_files import big_safetensors
from daemon_process import start_daemon
from modelreg.shared.sync_client import SyncClient

SIZE = int(os.environ.get("MODELREG_TEST_BIG_FILE", 1024**3))


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """A real safetensors file (one U8 tensor of SIZE bytes): the register pipeline refuses a broken one."""
    return big_safetensors(tmp_path / "big.safetensors", SIZE)


@pytest.mark.slow
def test_kill9_mid_register_leaves_no_broken_version(home, big_file, modelreg):
    d = start_daemon(home)
    try:
        with SyncClient(url=d.url, token=d.token) as c:
            first = c.register("big", path=big_file)
            job = first["job"]
            deadline = time.monotonic() + 60
            while job["done"] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
                job = c.job(job["id"])
            assert 0 < job["done"] < job["total"], "the kill must land in the middle of storing"
            d.kill9()
    finally:
        d.stop()

    d = start_daemon(home)
    try:
        assert list((home / "blobs" / "tmp").iterdir()) == [], "start-up removes interrupted writes"
        db = team_backend.connect(home)
        rows = [tuple(r) for r in db.execute("SELECT number, status, status_message FROM versions").fetchall()]
        assert rows == [(1, "failed", rows[0][2])] and "interrupted" in rows[0][2]
        for sha, in db.execute("SELECT m.sha256 FROM manifest m JOIN versions v ON v.id = m.version_id "
                               "WHERE v.status = 'ready'").fetchall():
            assert (home / "blobs" / "sha256" / sha[:2] / sha[2:]).is_file()
        db.close()
        r = modelreg("register", str(big_file), "--name", "big", "--json", check=True, timeout=300)
        v = json.loads(r.stdout)
        assert v["version"] == 2 and v["status"] == "ready" and v["total_size"] == big_file.stat().st_size
        assert modelreg("verify", "big@2", check=True, timeout=300).returncode == 0
    finally:
        d.stop()
