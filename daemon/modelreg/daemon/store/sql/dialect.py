"""Where the two dialects differ, asked by the shared SQL (``q.dialect``).

The aggregates' SQL is written once in what SQLite and PostgreSQL share. The few things they
spell differently are methods here, each returning a fragment with ``?`` placeholders and
the parameters it takes; ``sqlite/dialect.py`` and ``postgres/dialect.py`` implement them.
(PostgreSQL's engine also rewrites a few spellings mechanically: ``postgres/translate.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

Kind = Literal["int", "text"]


class Dialect(Protocol):
    name: str
    row_lock: str  # appended to a SELECT of one row: hold it until COMMIT ("" where writes are serial)

    def glob(self, column: str, pattern: str) -> tuple[str, list[Any]]:
        """``column`` matches the GLOB ``pattern`` (``*``, ``?``, ``[…]``), case-sensitively."""

    def binary(self, column: str) -> str:
        """``column`` compared byte for byte, whatever its collation (names ignore case)."""

    def values(self, items: Sequence[Any], kind: Kind) -> tuple[str, list[Any]]:
        """A subquery of ``items`` for ``IN`` / ``NOT IN`` (one parameter however many items)."""

    def json_get(self, column: str, key: str) -> str:
        """The JSON text of ``key`` in the JSON object held by ``column`` (NULL when absent)."""

    def ids_taken(self, table: str) -> str | None:
        """A statement to run after rows were inserted into ``table`` with explicit ids, so the
        next generated id comes after them (None: the database does that by itself)."""

    def fact_matches(self, column: str, key: str, value: str | None) -> tuple[str, list[Any]]:
        """An EXISTS: the JSON ``column`` holds ``key`` at any depth (with ``value``, as a person
        writes it: text and numbers without regard to case, ``true``/``false``/``null`` by type)."""


BARE = ("true", "false", "null")  # fact values matched by JSON type, not as text
