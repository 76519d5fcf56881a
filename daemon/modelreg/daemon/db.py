"""SQLite access: one writer connection, separate readers (PRODUCT.md §5).

All writes go through ``Database.transaction()``: an asyncio lock serialises them in this
process and ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so a transaction never
fails half-way with "database is locked"; ``busy_timeout`` covers outside readers such as the
sqlite3 shell. Events appended inside a transaction are published only after it commits.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from modelreg.shared.errors import ModelregError

from .store.sqlite.engine import SchemaTooNew
from .store.sqlite.migrations import LATEST, MIGRATIONS

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # WAL + NORMAL is durable against process crashes
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)
READERS = 2


class Transaction:
    """A write transaction in progress; collects events to publish after commit."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []
        self.now = time.time()

    async def execute(self, sql: str, params: Any = ()) -> aiosqlite.Cursor:
        return await self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        if rows:  # every call is a hop to the connection's thread: skip empty ones
            await self.conn.executemany(sql, rows)

    async def one(self, sql: str, params: Any = ()) -> aiosqlite.Row | None:
        rows = await self.conn.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Any = ()) -> list[aiosqlite.Row]:
        return list(await self.conn.execute_fetchall(sql, params))


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(READERS))
        self._write_lock = asyncio.Lock()
        self.on_commit: list[Callable[[list[dict[str, Any]]], None]] = []

    async def open(self) -> None:
        self._writer = await self._connect()
        await self._migrate()
        self._readers = [await self._connect() for _ in range(READERS)]

    async def close(self) -> None:
        for conn in [*self._readers, self._writer]:
            if conn is not None:
                await conn.close()
        self._readers, self._writer = [], None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in _PRAGMAS:
            await conn.execute(pragma)
        return conn

    async def _migrate(self) -> None:
        assert self._writer is not None
        conn = self._writer
        async with conn.execute("PRAGMA user_version") as cur:
            current = (await cur.fetchone())[0]
        if current > LATEST:
            raise SchemaTooNew(
                f"{self.path} was written by a newer modelreg (schema {current}, this code "
                f"knows up to {LATEST}); upgrade modelreg instead of opening it with this one"
            )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        for number, name, sql in MIGRATIONS:
            if number <= current:
                continue
            # Each migration is its own transaction: split the script so it stays atomic
            # (executescript would COMMIT first).
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time())
                )
                await conn.execute(f"PRAGMA user_version = {number}")
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        assert self._writer is not None, "database is closed"
        async with self._write_lock:
            tx = Transaction(self._writer)
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await self._writer.rollback()
                raise
            await self._writer.commit()
        for callback in self.on_commit:
            callback(tx.events)

    def reader(self) -> aiosqlite.Connection:
        return self._readers[next(self._next_reader)]

    # execute_fetchall is one round trip to the connection's thread (a cursor takes three).
    async def one(self, sql: str, params: Any = ()) -> aiosqlite.Row | None:
        rows = await self.reader().execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Any = ()) -> list[aiosqlite.Row]:
        return list(await self.reader().execute_fetchall(sql, params))


def _split_sql(script: str) -> list[str]:
    """Split a migration script on ';' at statement ends (our scripts hold no ';' in strings)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
