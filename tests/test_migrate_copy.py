"""`modelreg migrate`: the demo registry copied into a real PostgreSQL 15 and a real SeaweedFS
bucket, checked from outside (every row, the audit chain, the sequences, every blob), and a
copy that failed on its blobs (or left a truncated object) finished by a second run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from migrate_support import (bucket_sizes, build_demo, new_bucket, one_line_error, pg_counts, pg_fetch, report,
                             run_migrate, sqlite_counts)
from pg_server import pg_dsn, pg_server  # noqa: F401 - the fixtures (tests/pg_server.py)

pytestmark = pytest.mark.sqlite_only(reason="migrate's source is an embedded SQLite registry")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("migrate-demo"))


def _rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def _chain_on_target(dsn: str) -> dict:
    """`audit verify`'s walk (the chain's rules, store/chain.py) over the rows as PostgreSQL holds them."""
    from modelreg.daemon.store.chain import GENESIS, check_rows, end_of_log, parse_head

    head = parse_head((await pg_fetch(dsn, "SELECT value FROM meta WHERE key = 'events.head'"))[0]["value"])
    rows = await pg_fetch(dsn, "SELECT id, ts, kind, actor, model, version, data, prev_hash, hash FROM events ORDER BY id")
    verdict, prev, expected, checked = check_rows(rows, head, GENESIS, 1, 0)
    return verdict or end_of_log(head, prev, expected, checked)[0]


async def test_the_demo_registry_arrives_whole(demo_home: Path, pg_dsn: str, s3_server) -> None:  # noqa: F811
    db = demo_home / "registry.db"
    bucket = new_bucket(s3_server)
    r = report(run_migrate(demo_home, "--to", pg_dsn, "--artifacts", f"s3://{bucket}/team", "--json",
                           env=s3_server.env(f"s3://{bucket}/team")))

    source = sqlite_counts(db)
    assert r["tables"] == len(source) and r["rows"] == sum(source.values()) > 100
    assert await pg_counts(pg_dsn, list(source)) == source
    assert r["env"] == {"MODELREG_DATABASE": pg_dsn, "MODELREG_ARTIFACTS": f"s3://{bucket}/team"}

    # The audit chain verifies over the copied rows, and its
    # head is the source's: the next event a team daemon appends links to it.
    head = _rows(db, "SELECT value FROM meta WHERE key = 'events.head'")[0][0]
    assert (await pg_fetch(pg_dsn, "SELECT value FROM meta WHERE key = 'events.head'"))[0]["value"] == head
    verdict = await _chain_on_target(pg_dsn)
    assert verdict["ok"] and verdict["checked"] == source["events"] == r["chain"]["checked"]

    # Values as they were: floats bit for bit, trigger-kept counters not counted twice, facts as written.
    metrics = _rows(db, "SELECT id, version_id, key, value, recorded_at FROM metrics ORDER BY id")
    assert [tuple(x) for x in await pg_fetch(pg_dsn, "SELECT id, version_id, key, value, recorded_at FROM metrics "
                                                     "ORDER BY id")] == metrics
    models = _rows(db, "SELECT name, live_versions, next_version FROM models ORDER BY id")
    assert [tuple(x) for x in await pg_fetch(pg_dsn, "SELECT name::text, live_versions, next_version FROM models "
                                                     "ORDER BY id")] == models
    archs = _rows(db, "SELECT count(*) FROM versions WHERE json_extract(facts, '$.format') IS NOT NULL")[0][0]
    assert archs > 0
    facts = _rows(db, "SELECT id, facts FROM versions ORDER BY id")
    assert [tuple(x) for x in await pg_fetch(pg_dsn, "SELECT id, facts FROM versions ORDER BY id")] == facts

    # Every identity sequence is past the ids copied (and past SQLite's AUTOINCREMENT high-water mark).
    for table in ("versions", "metrics", "stage_changes", "gates"):
        top = max([_rows(db, f"SELECT coalesce(max(id), 0) FROM {table}")[0][0],
                   *[s for (s,) in _rows(db, f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'")]])
        nxt = (await pg_fetch(pg_dsn, f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS n"))[0]["n"]
        assert nxt == top + 1, table

    # Every blob the registry records is in the bucket with its size.
    blobs = dict(_rows(db, "SELECT sha256, size FROM blobs"))
    assert blobs and bucket_sizes(s3_server, bucket, "team") == blobs
    assert r["blobs"] == len(blobs) and r["bytes"] == sum(blobs.values()) and r["uploaded"] == len(blobs)


async def test_a_run_that_failed_on_its_blobs_is_finished_by_the_next(demo_home: Path, pg_dsn: str,  # noqa: F811
                                                                      s3_server, tmp_path: Path) -> None:
    db = demo_home / "registry.db"
    blobs = dict(_rows(db, "SELECT sha256, size FROM blobs"))
    # The smallest blob is uploaded last: damaged (same size, other bytes), it stops the run there.
    victim = min(blobs, key=lambda sha: (blobs[sha], sha))
    path = demo_home / "blobs" / "sha256" / victim[:2] / victim[2:]
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:] if original else original)
    bucket = new_bucket(s3_server)
    env = s3_server.env(f"s3://{bucket}/p")
    try:
        failed = one_line_error(run_migrate(demo_home, "--to", pg_dsn, "--artifacts", f"s3://{bucket}/p", env=env))
        assert victim in failed and "nothing was stored" in failed
        # The rows wait for the blobs: nothing was written to the database.
        assert await pg_fetch(pg_dsn, "SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = 'public'") == []
        assert victim not in bucket_sizes(s3_server, bucket, "p")
    finally:
        path.write_bytes(original)
    # An upload cut off mid-body, which SeaweedFS keeps as a short object under the content key.
    cut = max(blobs, key=lambda sha: (blobs[sha], sha))
    s3_server.client().put_object(Bucket=bucket, Key=f"p/sha256/{cut[:2]}/{cut[2:]}", Body=b"")

    r = report(run_migrate(demo_home, "--to", pg_dsn, "--artifacts", f"s3://{bucket}/p", "--json", env=env))
    assert not r["resumed"] and 1 <= r["uploaded"] < len(blobs)  # only what the first run had not uploaded
    assert bucket_sizes(s3_server, bucket, "p") == blobs
    assert await pg_counts(pg_dsn, ["versions", "events"]) == {
        k: v for k, v in sqlite_counts(db).items() if k in ("versions", "events")}


async def test_rows_first_then_the_blobs_by_a_second_run(demo_home: Path, pg_dsn: str, s3_server) -> None:  # noqa: F811
    first = run_migrate(demo_home, "--to", pg_dsn)
    assert first.returncode == 0, first.stderr
    assert f"MODELREG_DATABASE={pg_dsn}" in first.stdout and "MODELREG_ARTIFACTS" not in first.stdout
    assert "only a daemon on this home can serve them" in first.stdout

    bucket = new_bucket(s3_server)
    again = run_migrate(demo_home, "--to", pg_dsn, "--artifacts", f"s3://{bucket}", env=s3_server.env(f"s3://{bucket}"))
    assert again.returncode == 0, again.stderr
    assert "the rows were already there" in again.stdout and f"MODELREG_ARTIFACTS=s3://{bucket}" in again.stdout
    assert bucket_sizes(s3_server, bucket, "") == dict(_rows(demo_home / "registry.db", "SELECT sha256, size FROM blobs"))
