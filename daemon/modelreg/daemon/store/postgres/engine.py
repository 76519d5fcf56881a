"""The PostgreSQL engine: an asyncpg pool; each read or write is one function in one transaction.

The aggregates (``store/sql``) are the same functions the SQLite engine runs: ``fn(tx)``,
synchronous, with ``?`` placeholders. Here ``fn`` runs in a greenlet on the event loop
(``greenlets.py``) and each statement it issues is translated (``translate.py``) and awaited
over the transaction's connection like any other coroutine: the loop never waits on the
database, and the shared logic is written once.

- ``await engine.write(fn)`` runs ``fn(tx)`` inside one READ COMMITTED transaction that first
  takes a registry-wide advisory lock (writes take turns across every daemon, as SQLite's one
  writer does), and returns its result once COMMIT has returned (durable). ``tx.now`` is the
  transaction's clock; ``tx.events`` are handed to the ``on_commit`` callbacks after COMMIT,
  never for a rolled-back write, and announced to the other daemons, whose commits are handed
  to the same callbacks here, in event id order, each once (``notify.py``).
- ``await engine.read(fn)`` runs ``fn(q)`` in one REPEATABLE READ, READ ONLY transaction: one
  snapshot however many statements, concurrent with writes.

The invariants are also the database's own: version numbers are taken by ``UPDATE …
RETURNING`` on the model row, one production version per model is a partial unique index,
and the event chain's head row is locked ``FOR UPDATE`` by the appending write. A lost
connection is a ``DatabaseUnavailable`` error, never retried for a write (it may have
committed); a read runs again on another connection. A cancelled caller does not cancel its
write (as in SQLite): it may already be committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from modelreg.shared.errors import InvalidInput, Unavailable

from . import greenlets
from .dialect import DIALECT
from .migrations import migrate
from .notify import CHANNEL, EventFeed
from .translate import translate

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
# Writes take turns registry-wide (every daemon), as SQLite's one writer does: the aggregates'
# read-check-write logic is written once for both backends and relies on it. The invariants
# that matter most are also the database's own (unique indexes, the chain head's row lock).
WRITE_LOCK = 0x6D6F64656C726567  # "modelreg"


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


class Cursor:
    """What ``execute`` returns: the rows of a statement with RETURNING, and ``rowcount``."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows


class PgRead:
    """What a read function gets (``sql/tx.py``): runs in a greenlet on the loop, each statement
    awaited over the transaction's connection (``greenlets.py``; asyncpg is async-only)."""

    __slots__ = ("conn", "loop", "engine")
    dialect = DIALECT

    def __init__(self, conn: asyncpg.Connection, loop: asyncio.AbstractEventLoop, engine: PostgresEngine) -> None:
        self.conn, self.loop, self.engine = conn, loop, engine

    def _run(self, coro: Awaitable[T]) -> T:
        return greenlets.wait(coro)

    def _call(self, method: str, sql: str, params: Sequence[Any]) -> Any:
        """``conn.<method>(sql, *params)`` with the shared SQL translated; parameters the way
        SQLite takes them (an int where PostgreSQL infers text …) converted to the types the
        statement declares, learnt once per statement."""
        pg = translate(sql)
        types = self.engine.param_types.get(pg)
        args = coerce(params, types) if types is not None else tuple(params)
        try:
            return self._run(getattr(self.conn, method)(pg, *args))
        except asyncpg.CharacterNotInRepertoireError:
            raise _nul(params) from None
        except (asyncpg.DataError, TypeError) as exc:
            if types is not None or "query argument" not in str(exc):
                exc.add_note(f"SQL: {pg}")
                raise
        except asyncpg.PostgresError as exc:
            exc.add_note(f"SQL: {pg}")
            raise
        stmt = self._run(self.conn.prepare(pg))
        self.engine.param_types[pg] = types = [t.name for t in stmt.get_parameters()]
        return self._run(getattr(self.conn, method)(pg, *coerce(params, types)))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._call("fetchrow", sql, params)
        return None if row is None else plain(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return [plain(r) for r in self._call("fetch", sql, params)]


def _nul(params: Sequence[Any]) -> InvalidInput:
    """PostgreSQL's text cannot hold U+0000 (SQLite's can): the value is refused, clearly."""
    bad = next((repr(v)[:60] for v in params if isinstance(v, str) and "\x00" in v), "a value")
    return InvalidInput(f"{bad} holds a NUL character (\\0), which no name or value in the registry may hold")


class PgTx(PgRead):
    """What a write function gets: the reads plus ``execute``/``executemany``, ``now``, ``events``."""

    __slots__ = ("now", "events")

    def __init__(self, conn: asyncpg.Connection, loop: asyncio.AbstractEventLoop, engine: PostgresEngine,
                 now: float) -> None:
        super().__init__(conn, loop, engine)
        self.now = now
        self.events: list[dict[str, Any]] = []  # published after COMMIT

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if _RETURNS_ROWS.search(sql):
            rows = self.all(sql, params)
            return Cursor(rows, len(rows))
        status = self._call("execute", sql, params)
        count = status.rsplit(" ", 1)[-1]
        return Cursor([], int(count) if count.isdigit() else -1)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        pg = translate(sql)
        types = self.engine.param_types.get(pg)
        if types is None:
            stmt = self._run(self.conn.prepare(pg))
            self.engine.param_types[pg] = types = [t.name for t in stmt.get_parameters()]
        try:
            self._run(self.conn.executemany(pg, [coerce(r, types) for r in rows]))
        except asyncpg.CharacterNotInRepertoireError:
            raise _nul([v for r in rows for v in r]) from None


_RETURNS_ROWS = re.compile(r"\bRETURNING\b|^\s*(SELECT|WITH)\b", re.I)


def coerce(params: Sequence[Any], types: Sequence[str] | None) -> tuple[Any, ...]:
    """SQLite's loose parameters as the types PostgreSQL's statement declares."""
    if types is None:
        return tuple(params)
    out = []
    for value, kind in zip(params, types):
        if value is None:
            out.append(None)
        elif kind in ("text", "varchar", "citext", "json", "jsonb") and not isinstance(value, str):
            out.append(json.dumps(value) if kind in ("json", "jsonb") and not isinstance(value, (int, float))
                       else str(int(value)) if isinstance(value, bool) else str(value))
        elif kind in ("int2", "int4", "int8") and not isinstance(value, int):
            out.append(int(value))
        elif kind == "bool" and not isinstance(value, bool):
            out.append(bool(value))
        elif kind in ("float4", "float8") and isinstance(value, int):
            out.append(float(value))
        else:
            out.append(value)
    return tuple(out)


class _Row(dict):
    """A row whose NUMERIC values (``sum`` of BIGINT …) came back as plain numbers; read by
    name or by position like ``sqlite3.Row``."""

    def __init__(self, record: asyncpg.Record) -> None:
        super().__init__((k, _number(v)) for k, v in record.items())
        self._values = list(self.values())

    def __getitem__(self, key: Any) -> Any:
        return self._values[key] if isinstance(key, int) else super().__getitem__(key)


def _number(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def plain(record: asyncpg.Record) -> Any:
    """The record itself, unless it holds a Decimal (then a ``_Row`` of plain numbers)."""
    for value in record.values():
        if isinstance(value, decimal.Decimal):
            return _Row(record)
    return record


Sql = PgTx | PgRead


async def _end_transaction(conn: asyncpg.Connection) -> None:
    """What the pool does with a connection given back: roll back a transaction a failure left
    open (the connection is then reused as it was), else nothing. asyncpg's default reset costs
    a round trip per use to undo session state we never set (LISTEN has its own connection)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


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
        self.param_types: dict[str, list[str]] = {}  # per translated statement (``PgRead._call``)
        self._writer = asyncio.Lock()
        self.feed = EventFeed(self)  # other daemons' commits, and the order events are published in

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=self.min_size, max_size=self.max_size,
                                                   timeout=CONNECT_TIMEOUT, reset=_end_transaction)
        except _LOST as exc:
            raise self._unavailable("cannot connect to", exc) from exc
        try:
            async with self._pool.acquire() as conn:
                await migrate(conn, self.where)
            await self.feed.start()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, _LOST):
                raise self._unavailable("lost the connection to", exc) from exc
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        await self.feed.close()
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, *_LOST):  # a connection stuck on a dead server: drop them all
            pool.terminate()

    async def settings(self) -> dict[str, Any]:
        rows = await self.all("SELECT name, setting FROM pg_settings WHERE name IN "
                              "('fsync', 'synchronous_commit', 'full_page_writes', 'server_version')")
        return {"server": self.where, **{r["name"]: r["setting"] for r in rows}}

    def _unavailable(self, doing: str, exc: BaseException) -> DatabaseUnavailable:
        cause = str(exc) or type(exc).__name__
        return DatabaseUnavailable(f"PostgreSQL: {doing} {self.where}: {cause}",
                                   {"database": self.where, "cause": cause})

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is closed")
        return self._pool

    # -- writes ----------------------------------------------------------------------------------

    async def write(self, fn: Callable[[PgTx], T]) -> T:
        """Run ``fn(tx)`` in one transaction; its result once COMMIT returned."""
        pool = self._require_pool()
        return await asyncio.shield(self._write(pool, fn))

    async def _write(self, pool: asyncpg.Pool, fn: Callable[[PgTx], T]) -> T:
        loop = asyncio.get_running_loop()
        # One writer at a time per daemon holds a connection waiting for the registry-wide lock,
        # so waiting writers never take the pool from the reads.
        async with self._writer:
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    async with pool.acquire() as conn:
                        # BEGIN and the lock in one round trip, the announcement and COMMIT in another.
                        await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                        tx = PgTx(conn, loop, self, time.time())
                        result = await self._run_function(fn, tx)
                        # Announced to every daemon on COMMIT, never for a rolled-back write (notify.py).
                        notify = f"SELECT pg_notify('{CHANNEL}', '{int(tx.events[-1]['id'])}'); " if tx.events else ""
                        await conn.execute(notify + "COMMIT")
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
                await self.feed.committed(tx.events)  # published in id order, once
                return result
        raise AssertionError("unreachable")

    async def _run_function(self, fn: Callable[[Any], T], arg: Any) -> T:
        """``fn(arg)`` with its statements awaited here (``greenlets.py``). A cancelled caller
        still waits for it to finish: its statements run on the transaction's connection,
        which must not be rolled back and handed to another caller under them."""
        task = asyncio.ensure_future(greenlets.run(fn, arg))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await task
            raise

    def _publish(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        for callback in self.on_commit:
            try:
                callback(events)
            except Exception:  # noqa: BLE001 - a subscriber never undoes a commit
                log.exception("an after-commit subscriber failed")

    # -- reads -----------------------------------------------------------------------------------

    async def read(self, fn: Callable[[PgRead], T]) -> T:
        """Run ``fn(q)`` in one read-only snapshot. A read changes nothing, so one that lost its
        connection runs again, on another: after a failover every pooled connection may be
        dead, so up to one more try than the pool holds (the last one connects anew)."""
        pool = self._require_pool()
        loop = asyncio.get_running_loop()
        attempts = self.max_size + 1
        for attempt in range(1, attempts + 1):
            try:
                async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                    return await self._run_function(fn, PgRead(conn, loop, self))
            except (*_LOST, asyncpg.InterfaceError) as exc:
                if (cause := lost_connection(exc)) is None:
                    raise
                if attempt == attempts:
                    raise self._unavailable("lost the connection to", cause) from exc
        raise AssertionError("unreachable")

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.read(lambda q: q.one(sql, params))

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.read(lambda q: q.all(sql, params))
