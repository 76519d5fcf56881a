"""`modelreg migrate` refuses what it must, each time with one line and a non-zero exit, and
leaves the target as it found it: a running daemon, a registry not yet upgraded, a target that
already holds a registry (or someone else's tables), a database that cannot be reached or
refuses us (a wrong password among them), a missing bucket, refused S3 credentials."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from daemon_process import start_daemon
from migrate_support import build_registry, new_bucket, one_line_error, pg_fetch, report, run_migrate
from pg_server import free_port, pg_dsn, pg_server  # noqa: F401 - the fixtures (tests/pg_server.py)
from waiting import wait_until

pytestmark = pytest.mark.sqlite_only(reason="migrate's source is an embedded SQLite registry")


@pytest.fixture(scope="module")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_registry(tmp_path_factory.mktemp("migrate-small"), versions=3)


async def _tables(dsn: str) -> list[str]:
    return [r["table_name"] for r in await pg_fetch(
        dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")]


async def test_a_running_daemon_is_told_to_stop_first(small_home: Path, pg_dsn: str) -> None:  # noqa: F811
    daemon = start_daemon(small_home)
    try:
        line = one_line_error(run_migrate(small_home, "--to", pg_dsn))
    finally:
        daemon.stop()
    assert "the daemon is running" in line and "modelreg daemon --stop" in line
    assert await _tables(pg_dsn) == []


async def test_a_registry_not_yet_upgraded_is_refused(small_home: Path, pg_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    old = tmp_path / "old"
    shutil.copytree(small_home, old, ignore=shutil.ignore_patterns("daemon.*", "*.sock"))
    conn = sqlite3.connect(old / "registry.db")
    conn.execute("PRAGMA user_version = 11")  # as a release before watchdogs left it
    conn.close()
    line = one_line_error(run_migrate(old, "--to", pg_dsn))
    assert "schema 11" in line and "start the daemon once" in line
    assert await _tables(pg_dsn) == []


async def test_a_home_without_a_registry_is_refused(tmp_path: Path, pg_dsn: str) -> None:  # noqa: F811
    (tmp_path / "empty").mkdir()
    assert "no registry to migrate" in one_line_error(run_migrate(tmp_path / "empty", "--to", pg_dsn))


async def test_a_target_holding_another_registry_is_left_alone(small_home: Path, pg_dsn: str,  # noqa: F811
                                                             tmp_path: Path) -> None:
    report(run_migrate(small_home, "--to", pg_dsn, "--json"))
    before = await pg_fetch(pg_dsn, "SELECT count(*) AS n, max(id) AS top FROM events")
    other = await asyncio.to_thread(build_registry, tmp_path, 1)
    line = one_line_error(run_migrate(other, "--to", pg_dsn))
    assert "already holds a registry" in line and "empty database" in line
    assert await pg_fetch(pg_dsn, "SELECT count(*) AS n, max(id) AS top FROM events") == before


async def test_a_database_with_other_tables_is_refused(small_home: Path, pg_dsn: str) -> None:  # noqa: F811
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    await conn.close()
    line = one_line_error(run_migrate(small_home, "--to", pg_dsn))
    assert "not a modelreg registry" in line and "invoices" in line
    assert await _tables(pg_dsn) == ["invoices"]


@pytest.mark.parametrize("case", ["unreachable", "no such role", "no such database", "not postgres", "not a url"])
async def test_a_database_that_cannot_be_used_is_one_line(small_home: Path, pg_server, case: str) -> None:  # noqa: F811
    dsn, expect, code = {
        "unreachable": (f"postgresql://postgres@127.0.0.1:{free_port()}/x", "cannot connect to 127.0.0.1", 1),
        "no such role": (f"postgresql://ghost:s3cret@127.0.0.1:{pg_server.port}/postgres", 'role "ghost" does not exist', 1),
        "no such database": (pg_server.dsn("nowhere"), 'database "nowhere" does not exist', 1),
        "not postgres": ("mysql://root@127.0.0.1/reg", "PostgreSQL URL", 2),
        "not a url": ("postgresql://postgres@127.0.0.1:port/x", "not a usable PostgreSQL URL", 2),
    }[case]
    result = run_migrate(small_home, "--to", dsn)
    line = one_line_error(result)
    assert expect in line and "s3cret" not in line
    assert result.returncode == code


def _refused(dsn: str) -> bool:
    async def attempt() -> bool:
        try:
            await (await asyncpg.connect(dsn, timeout=10)).close()
        except asyncpg.InvalidPasswordError:
            return True
        return False

    return asyncio.run(attempt())


async def test_a_wrong_password_is_one_line_without_the_password(small_home: Path, pg_server) -> None:  # noqa: F811
    # The session's server trusts loopback; one role of our own must give a password.
    conn = await asyncpg.connect(pg_server.dsn())
    try:
        await conn.execute("DO $$ BEGIN CREATE ROLE migrator LOGIN PASSWORD 'right-one'; "
                           "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        hba = pg_server.data / "pg_hba.conf"
        rule = "host all migrator 127.0.0.1/32 scram-sha-256\n"
        if rule not in hba.read_text():
            hba.write_text(rule + hba.read_text())
            await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    dsn = f"postgresql://migrator:wrong-one@127.0.0.1:{pg_server.port}/postgres"
    await asyncio.to_thread(wait_until, lambda: _refused(dsn), 30, "the server to ask migrator for its password")
    line = one_line_error(run_migrate(small_home, "--to", dsn))
    assert 'password authentication failed for user "migrator"' in line and "wrong-one" not in line


async def test_a_missing_bucket_or_refused_credentials_stop_before_any_row(small_home: Path, pg_dsn: str,  # noqa: F811
                                                                         s3_server) -> None:
    line = one_line_error(run_migrate(small_home, "--to", pg_dsn, "--artifacts", "s3://no-such-bucket/p",
                                      env=s3_server.env("s3://no-such-bucket/p")))
    assert "no-such-bucket" in line and "does not exist" in line
    bucket = new_bucket(s3_server)
    env = {**s3_server.env(f"s3://{bucket}"), "AWS_SECRET_ACCESS_KEY": "wrong"}
    line = one_line_error(run_migrate(small_home, "--to", pg_dsn, "--artifacts", f"s3://{bucket}", env=env))
    assert "S3 refused" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert await _tables(pg_dsn) == []
