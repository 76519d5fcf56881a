"""The storage layer: the only place with SQL (issue 9, PRODUCT.md §2).

Services talk to a ``Store``: one object per aggregate (``store.catalog``, ``store.versions``,
``store.stages`` …), each a set of async operations in domain terms that return typed
records (``records.py``) or plain views, never driver rows. A write operation is one
transaction run as one function on the backend's writer (SQLite: one hop to the writer
thread, group-committed); dialect stays inside the backend package. The backend is chosen
by configuration: SQLite (the embedded default, HOME/registry.db) or PostgreSQL
(``MODELREG_DATABASE=postgresql://…``, several daemons on one registry), behind the same
aggregates (``store/sql``).
"""

from __future__ import annotations

from pathlib import Path

from modelreg.shared.errors import InvalidInput

from .postgres import PostgresStore
from .sql import Aggregates
from .sqlite import SqliteStore
from .sqlite import maintenance  # noqa: F401 - whole-file backup and health checks, outside the engine (issue 11)

Store = Aggregates  # the interface: every backend offers the same aggregates and operations


def open_store(database: str | None, home: Path) -> Store:
    """The store a configuration names (not yet opened): ``None`` or ``sqlite:PATH`` → SQLite,
    ``postgresql://…`` (or ``postgres://…``) → PostgreSQL."""
    if database is None or database == "":
        return SqliteStore(home / "registry.db")
    if database.startswith("sqlite:"):
        return SqliteStore(Path(database[len("sqlite:"):]).expanduser())
    if database.startswith(("postgresql://", "postgres://")):
        return PostgresStore(database)
    scheme = database.split(":", 1)[0]
    raise InvalidInput(f"unsupported database {scheme!r}: leave MODELREG_DATABASE unset (SQLite in the home), "
                       "or sqlite:/path/to/registry.db, or postgresql://user@host/db")
