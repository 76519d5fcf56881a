"""Issue 13, acceptance 4: the demo registry migrated into PostgreSQL + S3 is a working team
registry. A daemon on a new home (another machine: none of the old files) pointed at the two
backends passes `modelreg verify` (every file re-hashed from the bucket) and `modelreg audit
verify`, and `versions` / `show` print what they printed before the migration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_process import daemon_env, start_daemon
from migrate_support import build_demo, new_bucket, report, run_migrate
from pg_server import pg_dsn, pg_server  # noqa: F401 - the fixtures (tests/pg_server.py)

pytestmark = pytest.mark.sqlite_only(reason="migrate's source is an embedded SQLite registry")

MODELS = ("fraud-detector", "churn", "ranker")


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**daemon_env(home), "MODELREG_NO_AUTOSTART": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelreg.tui.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


def views(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """What `versions` and `show` print for each model and its versions (text and JSON)."""
    out = {}
    for name in MODELS:
        listing = cli(home, "versions", name, "--all", "--json", env=env)
        assert listing.returncode == 0, listing.stderr
        out[f"versions {name} --json"] = listing.stdout
        out[f"versions {name}"] = cli(home, "versions", name, "--all", env=env).stdout
        for v in json.loads(listing.stdout)[:4]:
            ref = f"{name}@{v['version']}"
            out[f"show {ref}"] = cli(home, "show", ref, env=env).stdout
            out[f"show {ref} --json"] = cli(home, "show", ref, "--json", env=env).stdout
    return out


def _same(what: str, text: str) -> object:
    """The output as a user compares it: byte for byte (facts keep their key order on both
    backends), JSON as JSON."""
    return json.loads(text) if what.endswith("--json") else text


def test_a_migrated_demo_registry_serves_a_team(tmp_path: Path, pg_dsn: str, s3_server) -> None:  # noqa: F811
    source = build_demo(tmp_path / "demo")
    daemon = start_daemon(source)
    try:
        before = views(source)
    finally:
        daemon.stop()

    bucket = new_bucket(s3_server)
    backends = {"MODELREG_DATABASE": pg_dsn, **s3_server.env(f"s3://{bucket}/registry")}
    r = report(run_migrate(source, "--to", pg_dsn, "--artifacts", f"s3://{bucket}/registry", "--json",
                           env=s3_server.env(f"s3://{bucket}/registry")))
    assert r["env"] == {k: backends[k] for k in ("MODELREG_DATABASE", "MODELREG_ARTIFACTS")}

    team_home = tmp_path / "team-daemon"  # no registry.db, no blobs: everything comes from the backends
    daemon = start_daemon(team_home, env=backends)
    try:
        verify = cli(team_home, "verify", "--json", env=backends)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        audit = cli(team_home, "audit", "verify", "--json", env=backends)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert json.loads(audit.stdout)["checked"] >= r["events"] > 0
        after = views(team_home, env=backends)
    finally:
        daemon.stop()
    assert not (team_home / "registry.db").exists()
    assert {k: _same(k, v) for k, v in after.items()} == {k: _same(k, v) for k, v in before.items()}
