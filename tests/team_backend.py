"""Which configuration the whole suite runs on (issue 13): ``MODELREG_TEST_BACKEND``.

- ``sqlite`` (the default): the embedded registry, SQLite and local blobs in each test's home.
- ``postgres``: the team configuration. One real PostgreSQL server (``pg_server.py``) and one
  real S3 server (SeaweedFS, ``s3_server.py``) start for the run; every home a test creates
  gets its own database (copied from a template the migrations already ran on) and its own
  prefix in the run's bucket, named after the home, so a daemon restarted on the same home
  finds its registry.

``daemon_env`` (``daemon_process.py``) adds ``env_for(home)`` to every daemon and command a
test runs, so the tests themselves do not change. Tests that look inside SQLite itself (its
file, its pragmas, its backups) are marked ``sqlite_only`` and skipped here, with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BACKEND = os.environ.get("MODELREG_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    raise SystemExit(f"MODELREG_TEST_BACKEND={BACKEND!r}: use sqlite (the default) or postgres")
TEMPLATE = "modelreg_template"
BUCKET = "modelreg-tests"

_servers: dict[str, object] = {}
_made: set[str] = set()
_lock = threading.Lock()


def team() -> bool:
    return BACKEND == "postgres"


def use(backend: str) -> None:
    """Choose the configuration in this process (the benchmarks' ``--backend``) before ``start``."""
    global BACKEND
    if backend not in ("sqlite", "postgres"):
        raise SystemExit(f"backend {backend!r}: use sqlite or postgres")
    BACKEND = backend
    os.environ["MODELREG_TEST_BACKEND"] = backend


def start() -> None:
    """Start the servers the configuration needs (once per run, in the controlling process)."""
    if not team() or _servers:
        return
    from pg_server import PgServer, find_bindir
    from s3_server import start_s3_server

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("MODELREG_TEST_BACKEND=postgres needs PostgreSQL (initdb, postgres): not found")
    pg = PgServer(bindir)
    pg.start()
    _servers["pg"] = pg
    _servers["s3"] = start_s3_server()
    _servers["s3"].create_bucket(BUCKET)  # type: ignore[attr-defined]
    _psql(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
    from modelreg.daemon.store.postgres.engine import PostgresEngine

    async def migrate() -> None:
        engine = PostgresEngine(pg.dsn(TEMPLATE), max_size=1)
        await engine.open()
        await engine.close()

    asyncio.run(migrate())


def stop() -> None:
    for server in _servers.values():
        server.stop()  # type: ignore[attr-defined]
    _servers.clear()


def _psql(sql: str) -> None:
    pg = _servers["pg"]
    done = subprocess.run(["psql", pg.dsn(), "-qAtc", sql], capture_output=True, text=True, timeout=60)  # type: ignore[attr-defined]
    if done.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")


def _name(home: Path) -> str:
    return hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:24]


def database_url(home: Path) -> str:
    """The home's own database, created on first use."""
    name = "h_" + _name(home)
    with _lock:
        if name not in _made:
            _psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
            _made.add(name)
    return _servers["pg"].dsn(name)  # type: ignore[attr-defined]


def artifacts_env(home: Path) -> dict[str, str]:
    """The home's own prefix in the run's bucket, and the variables that point at it. (One
    bucket for the run: SeaweedFS gives each bucket volumes of its own, and runs out of them
    after some 140 buckets.)"""
    return _servers["s3"].env(f"s3://{BUCKET}/h-{_name(home)}")  # type: ignore[attr-defined]


def env_for(home: Path) -> dict[str, str]:
    """What a daemon or command on ``home`` needs for this configuration (nothing for SQLite)."""
    if not team():
        return {}
    return {"MODELREG_DATABASE": database_url(home), **artifacts_env(home)}


class PgConnection:
    """A plain connection to a home's PostgreSQL database in sqlite3's shape (``execute`` →
    cursor, ``?`` placeholders, autocommit), for tests that look or reach behind the daemon's
    back whichever backend runs: the same statement a test writes for SQLite runs here."""

    def __init__(self, dsn: str) -> None:
        import asyncpg

        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._conn = self._run(asyncpg.connect(dsn, timeout=10))
        self.row_factory = None  # rows read by name or position either way

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        from modelreg.daemon.store.postgres.engine import Cursor, coerce
        from modelreg.daemon.store.postgres.translate import translate

        if sql.lstrip().upper().startswith("PRAGMA"):  # SQLite's connection settings mean nothing here
            return Cursor([], 0)
        pg = translate(sql)
        stmt = self._run(self._conn.prepare(pg))
        args = coerce(params, [t.name for t in stmt.get_parameters()])
        rows = self._run(stmt.fetch(*args))
        status = stmt.get_statusmsg() or ""
        count = status.rsplit(" ", 1)[-1]
        return Cursor(list(rows), int(count) if count.isdigit() else len(rows))

    def commit(self) -> None:
        pass

    def close(self) -> None:
        self._run(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(home: Path) -> Any:
    """A second connection to the home's registry, as a user with a database client would open
    it: sqlite3 on HOME/registry.db, or the home's PostgreSQL database (``PgConnection``)."""
    if team():
        return PgConnection(database_url(home))
    import sqlite3

    conn = sqlite3.connect(home / "registry.db", timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def pg_dsn() -> str:
    return _servers["pg"].dsn()  # type: ignore[attr-defined]


if __name__ == "__main__":  # pragma: no cover - a manual check: start, print, stop
    use("postgres")
    start()
    print(env_for(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/x")))
    stop()
