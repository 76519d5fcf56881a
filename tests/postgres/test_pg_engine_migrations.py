"""PostgreSQL migrations 1–12 (issue 13): the same schema as SQLite's, applied once, guarded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from modelreg.daemon.store.postgres.engine import PostgresEngine
from modelreg.daemon.store.postgres.migrations import LATEST
from modelreg.daemon.store.sqlite.engine import SchemaTooNew, SqliteEngine


async def _columns(dsn: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_schema = 'public'")
    finally:
        await conn.close()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["table_name"], set()).add(r["column_name"])
    return out


async def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    engine = SqliteEngine(path)
    await engine.open()
    await engine.close()
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        return {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        conn.close()


async def test_migrations_build_the_sqlite_schema_once(pg_dsn: str, tmp_path: Path) -> None:
    engine = PostgresEngine(pg_dsn)
    await engine.open()
    await engine.close()
    assert await _columns(pg_dsn) == await _sqlite_columns(tmp_path / "registry.db")

    again = PostgresEngine(pg_dsn)  # a second daemon, or a restart: nothing left to apply
    await again.open()
    try:
        rows = await again.all("SELECT number FROM schema_migrations ORDER BY number")
        assert [r["number"] for r in rows] == list(range(1, LATEST + 1))
        assert await again.one("SELECT value FROM meta WHERE key = 'events.head'") is not None
    finally:
        await again.close()


async def test_daemons_starting_together_migrate_once(pg_dsn: str) -> None:
    engines = [PostgresEngine(pg_dsn) for _ in range(3)]
    await asyncio.gather(*(e.open() for e in engines))
    try:
        rows = await engines[0].all("SELECT number FROM schema_migrations ORDER BY number")
        assert [r["number"] for r in rows] == list(range(1, LATEST + 1))
    finally:
        await asyncio.gather(*(e.close() for e in engines))


async def test_a_newer_schema_is_refused(pg_dsn: str) -> None:
    engine = PostgresEngine(pg_dsn)
    await engine.open()
    await engine.write(lambda tx: tx.execute("INSERT INTO schema_migrations VALUES ($1, 'from the future', 0)",
                                             (LATEST + 1,)))
    await engine.close()
    with pytest.raises(SchemaTooNew, match=f"schema {LATEST + 1}, this code knows up to {LATEST}"):
        await PostgresEngine(pg_dsn).open()


@pytest.fixture
async def engine(pg_dsn: str):
    e = PostgresEngine(pg_dsn)
    await e.open()
    yield e
    await e.close()


async def _model_with_versions(engine: PostgresEngine, name: str, count: int) -> list[int]:
    def fn(tx):
        model_id = tx.one("INSERT INTO models (name, created_at, updated_at) VALUES ($1, $2, $2) "
                          "RETURNING id", (name, tx.now))["id"]
        return [tx.one("INSERT INTO versions (model_id, number, source, created_at, created_by, updated_at) "
                       "VALUES ($1, $2, 'cli', $3, 'test', $3) RETURNING id", (model_id, n, tx.now))["id"]
                for n in range(1, count + 1)]
    return await engine.write(fn)


async def test_one_production_version_per_model(engine: PostgresEngine) -> None:
    a1, a2 = await _model_with_versions(engine, "a", 2)
    (b1,) = await _model_with_versions(engine, "b", 1)
    promote = "UPDATE versions SET stage = 'production' WHERE id = $1"
    await engine.write(lambda tx: tx.execute(promote, (a1,)))
    await engine.write(lambda tx: tx.execute(promote, (b1,)))  # another model's production is its own
    with pytest.raises(asyncpg.UniqueViolationError) as refused:
        await engine.write(lambda tx: tx.execute(promote, (a2,)))
    assert refused.value.constraint_name == "versions_one_production"

    def swap(tx):  # archiving the old one first, in the same transaction, is allowed
        tx.execute("UPDATE versions SET stage = 'archived' WHERE id = $1", (a1,))
        tx.execute(promote, (a2,))
    await engine.write(swap)
    rows = await engine.all("SELECT id FROM versions WHERE stage = 'production' ORDER BY id")
    assert [r["id"] for r in rows] == [a2, b1]


async def test_constraints_hold(engine: PostgresEngine) -> None:
    (v1,) = await _model_with_versions(engine, "Fraud", 1)
    with pytest.raises(asyncpg.UniqueViolationError):  # names are unique ignoring case, as in SQLite
        await _model_with_versions(engine, "fraud", 0)
    with pytest.raises(asyncpg.CheckViolationError):
        await engine.write(lambda tx: tx.execute("UPDATE versions SET stage = 'live' WHERE id = $1", (v1,)))
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await engine.write(lambda tx: tx.execute(
            "INSERT INTO params (version_id, key, value) VALUES ($1, 'lr', '0.1')", (v1 + 1000,)))
    with pytest.raises(asyncpg.CheckViolationError):  # migration 8: a gate has a stage or an alias, not both
        await engine.write(lambda tx: tx.execute(
            "INSERT INTO gates (stage, alias, rule, created_at, created_by) "
            "VALUES ('production', 'champion', 'auc >= 0.9', 0, 'test')"))
    # Migration 6's triggers keep the live version count.
    assert (await engine.one("SELECT live_versions FROM models"))["live_versions"] == 1
    await engine.write(lambda tx: tx.execute("UPDATE versions SET deleted_at = 1 WHERE id = $1", (v1,)))
    assert (await engine.one("SELECT live_versions FROM models"))["live_versions"] == 0
