"""A PostgreSQL server that goes away (issue 13): a clear error, nothing half-written, and the
engine carries on once the server answers again."""

from __future__ import annotations

import asyncpg
import pytest

from modelreg.daemon.store.postgres.engine import DatabaseUnavailable, PgTx, PostgresEngine
from modelreg.shared.errors import Unavailable

from pg_server import PgServer, free_port


@pytest.fixture
async def engine(pg_dsn: str):
    e = PostgresEngine(pg_dsn)
    await e.open()
    yield e
    await e.close()


async def test_a_connection_lost_mid_write_is_a_clear_error(engine: PostgresEngine, pg_server: PgServer) -> None:
    admin = await asyncpg.connect(pg_server.dsn())

    def interrupted(tx: PgTx) -> None:
        tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES ('half', 0, 0)")
        pid = tx.one("SELECT pg_backend_pid() AS pid")["pid"]
        # an operator, a failover, a crash (sent by the loop, as the engine sends statements)
        tx._run(admin.execute("SELECT pg_terminate_backend($1)", pid))
        tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES ('other-half', 0, 0)")

    try:
        with pytest.raises(DatabaseUnavailable) as lost:
            await engine.write(interrupted)
    finally:
        await admin.close()
    assert isinstance(lost.value, Unavailable) and lost.value.status == 503
    assert lost.value.message.startswith(f"PostgreSQL: lost the connection to 127.0.0.1:{pg_server.port}/")
    assert lost.value.details["database"] == engine.where
    # Nothing of it was committed, and the pool replaced the connection: the next write works.
    await engine.write(lambda tx: tx.execute("INSERT INTO models (name, created_at, updated_at) VALUES ('x', 0, 0)"))
    assert [r["name"] for r in await engine.all("SELECT name FROM models")] == ["x"]


async def test_reads_survive_connections_the_server_dropped(engine: PostgresEngine, pg_server: PgServer) -> None:
    await engine.read(lambda q: q.one("SELECT 1"))
    admin = await asyncpg.connect(pg_server.dsn())
    try:
        dropped = await admin.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = $1 AND pid <> pg_backend_pid()", engine.where.split("/")[-1])
    finally:
        await admin.close()
    assert dropped >= 1
    assert await engine.read(lambda q: q.one("SELECT count(*) AS n FROM models")["n"]) == 0


async def test_an_unreachable_server_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(DatabaseUnavailable, match=f"PostgreSQL: cannot connect to 127.0.0.1:{port}/registry"):
        await PostgresEngine(f"postgresql://modelreg:secret@127.0.0.1:{port}/registry").open()


async def test_a_closed_engine_says_so(pg_dsn: str) -> None:
    engine = PostgresEngine(pg_dsn)
    with pytest.raises(RuntimeError, match="closed"):
        await engine.read(lambda q: q.one("SELECT 1"))
