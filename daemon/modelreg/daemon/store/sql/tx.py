"""What the aggregates' functions are given, whichever backend runs them.

Every aggregate operation is a plain synchronous function of one transaction: ``fn(tx)`` for
a write, ``fn(q)`` for a read, run off the event loop by the backend's engine in one hop
(SQLite: on its writer or a reader thread; PostgreSQL: on the engine's worker threads, each
statement sent over the transaction's connection). The SQL is written once, in the subset
both dialects share, with ``?`` placeholders; where the dialects differ the function asks
``q.dialect`` (``dialect.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .dialect import Dialect

T = TypeVar("T")


class Row(Protocol):
    def __getitem__(self, key: int | str) -> Any: ...
    def keys(self) -> Any: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...


class Sql(Protocol):
    """A read: ``one``/``all`` in one snapshot. A write's ``tx`` is one too."""

    dialect: Dialect

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class WriteTx(Sql, Protocol):
    """A write: statements in one transaction, its clock ``now``, the ``events`` it appended
    (published by the engine after COMMIT, never for a rolled-back write)."""

    now: float
    events: list[dict[str, Any]]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Engine(Protocol):
    on_commit: list[Callable[[list[dict[str, Any]]], None]]

    async def write(self, fn: Callable[[WriteTx], T]) -> T: ...
    async def read(self, fn: Callable[[Sql], T]) -> T: ...
    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
