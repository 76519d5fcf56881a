"""The SQLite engine: one writer thread with group commit, a few reader threads.

A write is one synchronous function ``fn(tx)`` run on the writer's thread (datasette's
``execute_write_fn`` shape): a registration is one hop to that thread, not one per statement,
and no ``await`` ever happens while SQLite's write lock is held. Writes that arrive while a
group is being committed wait for the next group; each group is one ``BEGIN IMMEDIATE …
COMMIT`` in which every write runs in its own SAVEPOINT, so a write that raises rolls back
alone and only its caller sees the error. The writer runs ``synchronous=FULL``: when a
write's future resolves, its group's commit is on disk (one fsync per group, however many
writes it holds). Events a write appended are published after its group commits.

Reads run ``fn(conn)`` on one of a few reader connections (WAL readers never block the
writer): a version's detail is one hop however many statements it takes.

The threads are aiosqlite's: each connection owns one, and ``_run`` queues a whole function
on it instead of a single statement.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from modelreg.shared.errors import ModelregError, disk_full

from .dialect import DIALECT
from .migrations import LATEST, MIGRATIONS

T = TypeVar("T")
log = logging.getLogger("modelreg.store")

_COMMON_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",  # outside readers and writers (the sqlite3 shell, a second process)
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)
# The writer pays one fsync per group so an acknowledged write survives a power cut; readers
# never write, so their setting does not matter.
WRITER_PRAGMAS = (*_COMMON_PRAGMAS, "PRAGMA synchronous=FULL")
READER_PRAGMAS = (*_COMMON_PRAGMAS, "PRAGMA synchronous=NORMAL", "PRAGMA query_only=ON")
READERS = 3
MAX_GROUP = 256  # writes per commit; bounds the time one group holds the lock


class SchemaTooNew(ModelregError):
    code = "schema_too_new"


class MigrationFailed(ModelregError):
    code = "migration_failed"


class NotADatabase(ModelregError):
    code = "not_a_database"


class WriteTx:
    """What a write function gets: the writer's connection inside its SAVEPOINT."""

    __slots__ = ("conn", "now", "events")
    dialect = DIALECT

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.events: list[dict[str, Any]] = []  # published after the group commits

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self.conn.executemany(sql, rows)

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()


class ReadConn:
    """What a read function gets (the same ``one``/``all`` as a write, no writes)."""

    __slots__ = ("conn",)
    dialect = DIALECT

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()


Sql = WriteTx | ReadConn  # read functions accept either, so one query serves both


@dataclass
class _Pending:
    fn: Callable[[WriteTx], Any]
    future: asyncio.Future[Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None


async def _run(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(sqlite3_connection, *args)`` on the connection's own thread: one hop."""
    return await conn._execute(lambda: fn(conn._conn, *args))  # noqa: SLF001 - aiosqlite's queue


class SqliteEngine:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(READERS))
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self.on_commit: list[Callable[[list[dict[str, Any]]], None]] = []
        self.groups = 0  # committed groups, and the writes they held (for the benchmark and tests)
        self.grouped_writes = 0

    async def open(self) -> None:
        self._writer = await self._connect(WRITER_PRAGMAS)
        try:
            await _run(self._writer, _migrate, self.path)
            for _ in range(READERS):
                self._readers.append(await self._connect(READER_PRAGMAS))
        except BaseException:
            await self.close()  # their threads would keep the process alive
            raise

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        for conn in [*self._readers, self._writer]:
            if conn is not None:
                await conn.close()
        self._readers, self._writer = [], None

    async def _connect(self, pragmas: tuple[str, ...]) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            await _run(conn, _apply, pragmas)
        except BaseException as exc:
            await conn.close()  # its thread would keep the process alive
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                raise NotADatabase(f"{self.path} is not a SQLite database (damaged, or another file): "
                                   "restore it from a backup (`modelreg restore`), or move it away to "
                                   "start an empty registry", {"path": str(self.path)}) from None
            raise
        return conn

    def pragma(self, name: str, writer: bool = True) -> Any:
        """A setting as a live connection has it (tests check durability on the real thing)."""
        conn = self._writer if writer else self._readers[0]
        assert conn is not None
        return _run(conn, lambda c: c.execute(f"PRAGMA {name}").fetchone()[0])

    async def settings(self) -> dict[str, Any]:
        """The durability settings as the live connections hold them now (GET /v1/status shows
        them, so a test or an operator checks the running daemon, not the code)."""
        if self._writer is None:
            raise RuntimeError("the store is closed")
        return {"writer": await _run(self._writer, _settings),
                "readers": [await _run(conn, _settings) for conn in self._readers]}

    # -- writes ----------------------------------------------------------------------------------

    async def write(self, fn: Callable[[WriteTx], T]) -> T:
        """Run ``fn`` in the next group commit; its result once that group is durable."""
        if self._writer is None:
            raise RuntimeError("the store is closed")
        item = _Pending(fn, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # A cancelled caller does not cancel the group: its write may already be committed.
        return await asyncio.shield(item.future)

    async def _flush(self) -> None:
        assert self._writer is not None
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                await _run(self._writer, _commit_group, group)
            except BaseException as exc:  # noqa: BLE001 - the commit itself failed: every write in it did
                for item in group:
                    item.error, item.events = exc if isinstance(exc, Exception) else RuntimeError(str(exc)), []
            for item in group:
                if item.error is not None:
                    item.error = _domain_error(item.error)
            self.groups += 1
            self.grouped_writes += len(group)
            events = [e for item in group if item.error is None for e in item.events]
            for item in group:
                if item.future.done():
                    continue
                if item.error is not None:
                    item.future.set_exception(item.error)
                else:
                    item.future.set_result(item.result)
            if events:
                for callback in self.on_commit:
                    try:
                        callback(events)
                    except Exception:  # noqa: BLE001 - a subscriber never undoes a commit
                        log.exception("an after-commit subscriber failed")

    # -- reads -----------------------------------------------------------------------------------

    async def read(self, fn: Callable[[ReadConn], T]) -> T:
        """Run ``fn`` on a reader connection: one hop, any number of statements."""
        if not self._readers:
            raise RuntimeError("the store is closed")
        conn = self._readers[next(self._next_reader)]
        return await _run(conn, lambda c: fn(ReadConn(c)))

    async def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return await self.read(lambda r: r.one(sql, params))

    async def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return await self.read(lambda r: r.all(sql, params))


_SYNCHRONOUS = ("off", "normal", "full", "extra")


def _settings(conn: sqlite3.Connection) -> dict[str, Any]:
    def value(name: str) -> Any:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    return {"journal_mode": value("journal_mode"), "synchronous": _SYNCHRONOUS[value("synchronous")],
            "foreign_keys": bool(value("foreign_keys")), "busy_timeout_ms": value("busy_timeout"),
            "query_only": bool(value("query_only"))}


def _apply(conn: sqlite3.Connection, pragmas: tuple[str, ...]) -> None:
    for pragma in pragmas:
        conn.execute(pragma)


def _commit_group(conn: sqlite3.Connection, group: list[_Pending]) -> None:
    """One BEGIN IMMEDIATE … COMMIT; each write in its own SAVEPOINT (runs on the writer thread)."""
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        for item in group:
            tx = WriteTx(conn, now)
            conn.execute("SAVEPOINT w")
            try:
                item.result = item.fn(tx)
            except Exception as exc:  # noqa: BLE001 - rolls back this write only
                conn.execute("ROLLBACK TO w")
                item.error = exc
            else:
                item.events = tx.events
            conn.execute("RELEASE w")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    """End a failed group so the next one can BEGIN. SQLite may already have rolled back (a
    full disk at COMMIT can do that); a ROLLBACK that fails then must not hide the real error."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("ROLLBACK after a failed commit failed", exc_info=True)


def _domain_error(exc: Exception) -> Exception:
    """A full disk as the registry's InsufficientStorage (SQLITE_FULL: the database or its WAL
    could not grow); any other error unchanged."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
        return disk_full(f"SQLite: {exc}")
    return exc


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > LATEST:
        raise SchemaTooNew(
            f"{path} was written by a newer modelreg (schema {current}, this code "
            f"knows up to {LATEST}); upgrade modelreg instead of opening it with this one"
        )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    pending = [m for m in MIGRATIONS if m[0] > current]
    if not pending:
        return
    # Foreign keys are off while migrating (the pragma cannot change inside a transaction), as
    # SQLite's table-rebuild procedure requires: DROP TABLE of a table others reference would
    # otherwise cascade its implicit DELETE into their rows, or refuse. Each migration checks
    # instead, before it commits, that it left no reference dangling that was not there before.
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        dangling = len(conn.execute("PRAGMA foreign_key_check").fetchall())
        for number, name, sql in pending:
            # Each migration is its own transaction: split the script so it stays atomic
            # (executescript would COMMIT first).
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                left = conn.execute("PRAGMA foreign_key_check").fetchall()
                if len(left) > dangling:
                    raise MigrationFailed(f"migration {number} ({name}) would leave {len(left) - dangling} "
                                          f"row(s) of {left[-1][0]} naming a row that does not exist; "
                                          f"{path} is left at schema {number - 1}")
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time()))
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def _split_sql(script: str) -> list[str]:
    """Split a migration script on ';' at statement ends (our scripts hold no ';' in strings);
    a ``CREATE TRIGGER … BEGIN … END`` keeps the ';' of its body and stays one statement."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    out: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending = f"{pending};{part}" if pending else part
        statement = pending.strip()
        if not statement:
            pending = ""
            continue
        if _TRIGGER.match(statement) and not _END.search(statement):
            continue  # inside a trigger's body: the ';' ended one of its statements
        out.append(statement)
        pending = ""
    return out


_TRIGGER = re.compile(r"CREATE\s+(TEMP\w*\s+)?TRIGGER\b", re.I)
_END = re.compile(r"\bEND$", re.I)
