"""The PostgreSQL engine: an asyncpg pool; each read or write is one function in one transaction.

The shape the aggregates are ported to (the SQLite engine's, made async):

- ``await engine.write(fn)`` runs ``await fn(tx)`` inside one READ COMMITTED transaction on
  a pooled connection and returns its result once COMMIT has returned (``synchronous_commit``
  on: durable). ``tx`` is a ``PgTx``: ``tx.now`` (the transaction's clock, one value for
  every row it writes), ``tx.events`` (appended by ``events.append``, handed to the
  ``on_commit`` callbacks after COMMIT, never for a rolled-back write), and the statements
  ``await tx.execute / executemany / one / all / value (sql, params)`` with PostgreSQL's
  ``$1`` placeholders and ``params`` a sequence, as in SQLite's ``WriteTx``; rows are asyncpg
  Records, read by column name like ``sqlite3.Row``.
- ``await engine.read(fn)`` runs ``await fn(q)`` in one REPEATABLE READ, READ ONLY transaction
  (one snapshot however many statements), ``q`` a ``PgRead`` (``one / all / value``). A read
  function that only uses those also accepts a ``PgTx``, so one query serves both.

There is no group commit: PostgreSQL commits concurrent transactions itself, and several
daemons write at once. Invariants therefore live in the database: version numbers are taken
by ``UPDATE … RETURNING`` on the model row (its row lock orders concurrent allocations), the
event chain's head row is locked by ``SELECT … FOR UPDATE`` (``events.py``). A write that
loses a serialization or deadlock race is run again from the start (its function must not
touch anything outside the transaction, as in SQLite); a lost connection is a
``DatabaseUnavailable`` error, never retried for a write (it may have committed); a read
runs again on another connection (``read``).

A cancelled caller does not cancel its write (as in SQLite): it may already be committing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from modelreg.shared.errors import Unavailable

from .migrations import migrate

T = TypeVar("T")
log = logging.getLogger("modelreg.store")

WRITE_ATTEMPTS = 5  # serialization / deadlock losers are re-run; five losses in a row is a real problem
CONNECT_TIMEOUT = 10
CLOSE_TIMEOUT = 10

# The server went away, refused us, or ended our session: the database is unavailable. asyncpg
# reports a session the server ended while the connection sat idle in the pool either as
# ConnectionDoesNotExistError or, when the server's goodbye races the next statement, as
# InternalClientError ("another operation is in progress"); both mean this connection is gone.
_LOST = (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.AdminShutdownError,
         asyncpg.exceptions.CrashShutdownError, asyncpg.exceptions.CannotConnectNowError,
         asyncpg.exceptions.TooManyConnectionsError, asyncpg.exceptions.InternalClientError,
         OSError, asyncio.TimeoutError)
_GONE = ("connection is closed", "connection was closed", "released back to the pool")
_RACE = (asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError)


def lost_connection(exc: BaseException) -> BaseException | None:
    """The loss behind ``exc``, if it is one. asyncpg reports a connection that died inside a
    transaction in several ways: the real error, or an InterfaceError raised while handling it
    ("the underlying connection is closed"), or, when the pool noticed first and detached the
    connection from us mid-transaction, "released back to the pool"; we never release a
    connection before the transaction ends, so that too means it died. The chain is searched."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _LOST):
            return seen
        if isinstance(seen, asyncpg.InterfaceError) and any(m in str(seen) for m in _GONE):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached, or the connection was lost mid-transaction."""

    code = "database_unavailable"


class PgRead:
    """What a read function gets: ``one``, ``all``, ``value`` in the transaction's snapshot."""

    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def one(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        return await self.conn.fetchrow(sql, *params)

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        return await self.conn.fetch(sql, *params)

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.conn.fetchval(sql, *params)


class PgTx(PgRead):
    """What a write function gets: the reads plus ``execute``/``executemany``, ``now``, ``events``."""

    __slots__ = ("now", "events")

    def __init__(self, conn: asyncpg.Connection, now: float) -> None:
        super().__init__(conn)
        self.now = now
        self.events: list[dict[str, Any]] = []  # published after COMMIT

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> str:
        """Run one statement; PostgreSQL's status tag (``"UPDATE 1"``)."""
        return await self.conn.execute(sql, *params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)


Sql = PgTx | PgRead


def describe(dsn: str) -> str:
    """Where a DSN points, without its password: ``host:port/database``."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


class PostgresEngine:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.where = describe(dsn)
        self.min_size, self.max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None
        self.on_commit: list[Callable[[list[dict[str, Any]]], None]] = []
        self.commits = 0  # committed write transactions, and the re-runs races cost
        self.retries = 0

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=self.min_size, max_size=self.max_size,
                                                   timeout=CONNECT_TIMEOUT)
        except _LOST as exc:
            raise self._unavailable("cannot connect to", exc) from exc
        try:
            async with self._pool.acquire() as conn:
                await migrate(conn, self.where)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, _LOST):
                raise self._unavailable("lost the connection to", exc) from exc
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, *_LOST):  # a connection stuck on a dead server: drop them all
            pool.terminate()

    def _unavailable(self, doing: str, exc: BaseException) -> DatabaseUnavailable:
        cause = str(exc) or type(exc).__name__
        return DatabaseUnavailable(f"PostgreSQL: {doing} {self.where}: {cause}",
                                   {"database": self.where, "cause": cause})

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is closed")
        return self._pool

    # -- writes ----------------------------------------------------------------------------------

    async def write(self, fn: Callable[[PgTx], Awaitable[T]]) -> T:
        """Run ``await fn(tx)`` in one transaction; its result once COMMIT returned."""
        pool = self._require_pool()
        return await asyncio.shield(self._write(pool, fn))

    async def _write(self, pool: asyncpg.Pool, fn: Callable[[PgTx], Awaitable[T]]) -> T:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    tx = PgTx(conn, time.time())
                    result = await fn(tx)
            except _RACE:
                if attempt == WRITE_ATTEMPTS:
                    raise
                self.retries += 1
                continue
            except (*_LOST, asyncpg.InterfaceError) as exc:
                if (cause := lost_connection(exc)) is None:
                    raise
                raise self._unavailable("lost the connection to", cause) from exc
            self.commits += 1
            self._publish(tx.events)
            return result
        raise AssertionError("unreachable")

    def _publish(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        for callback in self.on_commit:
            try:
                callback(events)
            except Exception:  # noqa: BLE001 - a subscriber never undoes a commit
                log.exception("an after-commit subscriber failed")

    # -- reads -----------------------------------------------------------------------------------

    async def read(self, fn: Callable[[PgRead], Awaitable[T]]) -> T:
        """Run ``await fn(q)`` in one read-only snapshot. A read changes nothing, so one that
        lost its connection runs again, on another: after a failover every pooled connection
        may be dead, so up to one more try than the pool holds (the last one connects anew)."""
        pool = self._require_pool()
        attempts = self.max_size + 1
        for attempt in range(1, attempts + 1):
            try:
                async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                    return await fn(PgRead(conn))
            except (*_LOST, asyncpg.InterfaceError) as exc:
                if (cause := lost_connection(exc)) is None:
                    raise
                if attempt == attempts:
                    raise self._unavailable("lost the connection to", cause) from exc
        raise AssertionError("unreachable")

    async def one(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        return await self.read(lambda q: q.one(sql, params))

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        return await self.read(lambda q: q.all(sql, params))
