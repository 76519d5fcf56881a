"""Copying an embedded SQLite registry into PostgreSQL (``modelreg migrate``, issue 13).

Both backends hold the same tables and columns at the same schema number, so the copy is
generic: every table the SQLite file holds, in foreign-key order, by column name, each value
converted to the type the *live* PostgreSQL column has (read from information_schema, so a
column's type can change in the PostgreSQL migrations without touching this file), ids kept.
All of it is one transaction that verifies itself before COMMIT (row counts per table, the
hash chain walked over the PostgreSQL rows): either the whole registry is there and sound, or
nothing is. ``schema_migrations`` is not copied: the target's own migrations wrote it.

Only the reading of the SQLite file blocks; it runs in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import graphlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from modelreg.shared.errors import Conflict, IntegrityError, InvalidInput, ModelregError

from .chain import GENESIS, HEAD_KEY, check_rows, end_of_log, parse_head
from .postgres.engine import CONNECT_TIMEOUT, DatabaseUnavailable, describe, lost_connection
from .postgres.migrations import LATEST as PG_LATEST
from .postgres.migrations import migrate
from .sqlite.migrations import LATEST

BATCH = 5000                          # rows per COPY (and per read from SQLite)
NOT_COPIED = {"schema_migrations"}    # each side's own record of its migrations
SEEDED = {"meta", "mlflow_experiments"}  # migrations seed a row here (the chain head, MLflow's Default)


@dataclass(frozen=True)
class Source:
    """What the SQLite registry holds, read before anything is written."""

    path: Path
    schema: int
    tables: dict[str, list[str]]      # table → its columns, in SQLite's order
    counts: dict[str, int]            # table → rows
    sequences: dict[str, int]         # AUTOINCREMENT tables → the highest id ever handed out
    head: tuple[int, str]             # the event chain's head (id, hash)
    blobs: dict[str, int | None]      # every blob the registry records or references → size (None: unknown)


@dataclass(frozen=True)
class Target:
    schema: int                        # 0: no modelreg migration has run
    tables: list[str]
    data_rows: int                     # rows beyond what the migrations seed
    head: tuple[int, str] | None


@dataclass
class Copied:
    counts: dict[str, int] = field(default_factory=dict)
    chain: dict[str, Any] = field(default_factory=dict)


def _connect(path: Path) -> sqlite3.Connection:
    # mode=ro: a missing file is an error, never an empty new database. The copy reads from a
    # worker thread, one call at a time.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_source(path: Path) -> Source:
    """The registry in the SQLite file ``path``; refuses one that is not at the latest schema."""
    if PG_LATEST != LATEST:  # a copy is only sound between equal schemas
        raise IntegrityError(f"this modelreg's PostgreSQL schema ({PG_LATEST}) is not its SQLite schema ({LATEST})")
    if not path.is_file():
        raise InvalidInput(f"no registry to migrate: {path} does not exist")
    try:
        conn = _connect(path)
    except sqlite3.Error as exc:
        raise IntegrityError(f"cannot read {path}: {exc}") from None
    try:
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        if schema > LATEST:
            raise InvalidInput(f"{path} was written by a newer modelreg (schema {schema}, this one knows up to "
                               f"{LATEST}); migrate it with that modelreg")
        if schema < LATEST:
            raise InvalidInput(f"{path} is at schema {schema}, not {LATEST}: start the daemon once on this home "
                               "(`modelreg status`) so it upgrades the registry, stop it, then migrate")
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        tables = {n: [r["name"] for r in conn.execute(f"PRAGMA table_info({_q(n)})")]
                  for n in names if n not in NOT_COPIED}
        counts = {n: conn.execute(f"SELECT count(*) FROM {_q(n)}").fetchone()[0] for n in tables}
        sequences = {r["name"]: r["seq"] for r in conn.execute("SELECT name, seq FROM sqlite_sequence")}
        head_row = conn.execute("SELECT value FROM meta WHERE key = ?", (HEAD_KEY,)).fetchone()
        if head_row is not None:
            head = parse_head(head_row[0])
        else:  # a log written before the head was recorded: its last row is the head
            last = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
            head = (last["id"], last["hash"]) if last else (0, GENESIS)
        blobs: dict[str, int | None] = {}
        for sql in (
            # A signature bundle is a blob too; its size is the blobs row's, when there is one.
            "SELECT s.bundle_sha256, b.size FROM version_signatures s JOIN versions v ON v.id = s.version_id "
            "LEFT JOIN blobs b ON b.sha256 = s.bundle_sha256 WHERE s.bundle_sha256 IS NOT NULL AND v.purged_at IS NULL",
            "SELECT sha256, size FROM mlflow_artifacts",
            "SELECT mf.sha256, mf.size FROM manifest mf JOIN versions v ON v.id = mf.version_id WHERE v.purged_at IS NULL",
            "SELECT sha256, size FROM blobs",
        ):
            blobs.update((r[0], r[1]) for r in conn.execute(sql))
    except sqlite3.Error as exc:
        raise IntegrityError(f"{path} is not a readable modelreg registry: {exc} (`modelreg doctor` checks it)") from None
    finally:
        conn.close()
    return Source(path, schema, tables, counts, sequences, head, blobs)


# -- the target ------------------------------------------------------------------------------------


async def inspect_target(conn: asyncpg.Connection) -> Target:
    """What the database already holds (read only)."""
    tables = [r["table_name"] for r in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name")]
    if "schema_migrations" not in tables:
        return Target(0, tables, 0, None)
    schema = await conn.fetchval("SELECT coalesce(max(number), 0) FROM schema_migrations")
    return Target(schema, tables, await _data_rows(conn, tables), await _head(conn, tables))


async def _head(conn: asyncpg.Connection, tables: list[str]) -> tuple[int, str] | None:
    if "meta" not in tables:
        return None
    value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", HEAD_KEY)
    return None if value is None else parse_head(value)


async def _data_rows(conn: asyncpg.Connection, tables: list[str]) -> int:
    """Rows a registry's use wrote: everything but the migrations' own records and seeds."""
    rows = 0
    for table in tables:
        if table in NOT_COPIED:
            continue
        n = await conn.fetchval(f"SELECT count(*) FROM {_q(table)}")
        rows += n - (1 if table in SEEDED and n else 0)
    head = await _head(conn, tables)
    return rows + (1 if head is not None and head[0] > 0 else 0)


async def _columns(conn: asyncpg.Connection) -> dict[str, dict[str, asyncpg.Record]]:
    out: dict[str, dict[str, asyncpg.Record]] = {}
    for r in await conn.fetch(
            "SELECT table_name, column_name, udt_name, is_identity FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
        out.setdefault(r["table_name"], {})[r["column_name"]] = r
    return out


async def _fk_order(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    """``tables`` with every referenced table before the tables that reference it."""
    graph: dict[str, set[str]] = {t: set() for t in tables}
    for r in await conn.fetch(
            "SELECT ch.relname AS child, pa.relname AS parent FROM pg_constraint k "
            "JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid "
            "WHERE k.contype = 'f' AND ch.relnamespace = current_schema()::regnamespace"):
        if r["child"] in graph and r["parent"] in graph and r["child"] != r["parent"]:
            graph[r["child"]].add(r["parent"])  # a self-reference is checked at the end of its COPY
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())  # sorted: the same order every run
        order += ready
        sorter.done(*ready)
    return order


# -- converting values -----------------------------------------------------------------------------

Convert = Callable[[Any], Any]


def _to_int(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (int, bool)):
        return int(v)
    raise ValueError(f"{v!r} is not an integer")


def _to_float(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)  # a float64 stays bit-exact (hashed event times read back the same)
    raise ValueError(f"{v!r} is not a number")


def _to_text(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{v!r} is not text")
    return repr(v) if isinstance(v, float) else str(v)


def _to_json(v: Any) -> Any:
    text = _to_text(v)
    json.loads(text)  # named here with its table and column, not as a bare server error
    return text


def _to_bool(v: Any) -> Any:
    if v in (0, 1):
        return bool(v)
    raise ValueError(f"{v!r} is not 0 or 1")


def _to_bytes(v: Any) -> Any:
    if isinstance(v, bytes):
        return v
    raise ValueError(f"{v!r} is not binary")


CONVERT: dict[str, Convert] = {
    "int2": _to_int, "int4": _to_int, "int8": _to_int, "float4": _to_float, "float8": _to_float,
    "numeric": _to_float, "text": _to_text, "varchar": _to_text, "bpchar": _to_text, "citext": _to_text,
    "json": _to_json, "jsonb": _to_json, "bool": _to_bool, "bytea": _to_bytes,
}


def _converter(table: str, column: asyncpg.Record) -> Convert:
    convert = CONVERT.get(column["udt_name"])
    if convert is None:
        raise IntegrityError(f"{table}.{column['column_name']} has type {column['udt_name']} in PostgreSQL, "
                             "which migrate does not know how to fill")
    return convert


def _convert_rows(table: str, names: list[str], converters: list[Convert], rows: list[sqlite3.Row]) -> list[tuple]:
    out = []
    for row in rows:
        values = []
        for name, convert, value in zip(names, converters, row, strict=True):
            if value is None:
                values.append(None)
                continue
            try:
                values.append(convert(value))
            except ValueError as exc:
                raise IntegrityError(f"{table}.{name}: {exc} (row {dict(row)!r:.200}); nothing was copied") from None
        out.append(tuple(values))
    return out


# -- the copy --------------------------------------------------------------------------------------


async def copy_registry(conn: asyncpg.Connection, source: Source,
                        progress: Callable[[str, int], None] | None = None) -> Copied:
    """Copy ``source`` into the migrated, empty database on ``conn``, in one transaction that
    verifies the copy before it commits. ``progress(table, rows)`` after each table."""
    # citext (the case-insensitive model name) has no binary COPY codec of its own: it is text on the wire.
    if await conn.fetchval("SELECT 1 FROM pg_type WHERE typname = 'citext'"):
        await conn.set_builtin_type_codec("citext", codec_name="text")
    sqlite = await asyncio.to_thread(_connect, source.path)
    try:
        async with conn.transaction():
            # The chain head's row lock: a daemon started on the target meanwhile waits for us.
            await conn.fetchval("SELECT value FROM meta WHERE key = $1 FOR UPDATE", HEAD_KEY)
            target = await inspect_target(conn)
            if target.data_rows:
                raise Conflict(f"the target database began holding a registry while migrate ran "
                               f"({target.data_rows} rows); nothing was copied")
            columns = await _columns(conn)
            missing = sorted(t for t in source.tables if t not in columns)
            if missing:
                raise IntegrityError(f"the target has no table {', '.join(missing)}: its schema is not this "
                                     "modelreg's; nothing was copied")
            order = await _fk_order(conn, list(source.tables))
            triggered = [r["relname"] for r in await conn.fetch(
                "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace ORDER BY 1")]
            # The copied rows already carry what triggers maintain (models.live_versions):
            # firing them would count every version twice. Foreign keys stay checked.
            for table in triggered:
                await conn.execute(f"ALTER TABLE {_q(table)} DISABLE TRIGGER USER")
            await conn.execute("TRUNCATE " + ", ".join(_q(t) for t in order))  # the migrations' seed rows
            for table in order:
                await _copy_table(conn, sqlite, table, source.tables[table], columns[table])
                if progress:
                    progress(table, source.counts[table])
            for table in triggered:
                await conn.execute(f"ALTER TABLE {_q(table)} ENABLE TRIGGER USER")
            if await conn.fetchval("SELECT value FROM meta WHERE key = $1", HEAD_KEY) is None:
                await conn.execute("INSERT INTO meta (key, value) VALUES ($1, $2)", HEAD_KEY,
                                   f"{source.head[0]}:{source.head[1]}")
            await _advance_sequences(conn, source, columns)
            copied = await verify_rows(conn, source)
            if not copied.chain["ok"]:
                raise IntegrityError(f"the audit chain does not verify on the copy: {copied.chain['message']} "
                                     "(`modelreg audit verify` on the source says whether it was already broken); "
                                     "nothing was copied")
    finally:
        await asyncio.to_thread(sqlite.close)
    return copied


async def _copy_table(conn: asyncpg.Connection, sqlite: sqlite3.Connection, table: str, names: list[str],
                      target: dict[str, asyncpg.Record]) -> None:
    extra = [n for n in names if n not in target]
    if extra:
        raise IntegrityError(f"{table} has column(s) {', '.join(extra)} in SQLite that the target lacks: "
                             "its schema is not this modelreg's; nothing was copied")
    converters = [_converter(table, target[n]) for n in names]
    cursor = await asyncio.to_thread(sqlite.execute, f"SELECT {', '.join(_q(n) for n in names)} FROM {_q(table)}")
    while rows := await asyncio.to_thread(cursor.fetchmany, BATCH):
        records = _convert_rows(table, names, converters, rows)
        await conn.copy_records_to_table(table, records=records, columns=names)


async def _advance_sequences(conn: asyncpg.Connection, source: Source,
                             columns: dict[str, dict[str, asyncpg.Record]]) -> None:
    """Every identity sequence past the highest id copied, and past the highest SQLite ever
    handed out (AUTOINCREMENT): an id named in the audit log is never given again."""
    for table in source.tables:
        for name, column in columns[table].items():
            if column["is_identity"] != "YES":
                continue
            top = await conn.fetchval(f"SELECT max({_q(name)}) FROM {_q(table)}") or 0
            top = max(top, source.sequences.get(table, 0))
            seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)", _q(table), name)
            # setval(seq, 1, false): nothing handed out yet, the next id is 1.
            await conn.fetchval("SELECT setval($1, $2, $3)", seq, max(top, 1), top >= 1)


async def verify_rows(conn: asyncpg.Connection, source: Source) -> Copied:
    """Row counts per table against the source's, and the hash chain walked over the target's rows."""
    copied = Copied()
    for table in source.tables:
        copied.counts[table] = await conn.fetchval(f"SELECT count(*) FROM {_q(table)}")
    wrong = {t: (source.counts[t], n) for t, n in copied.counts.items() if n != source.counts[t]}
    if wrong:
        raise IntegrityError("row counts differ after the copy: " + ", ".join(
            f"{t} {a} in SQLite, {b} in PostgreSQL" for t, (a, b) in sorted(wrong.items())))
    head = await _head(conn, list(source.tables))
    if head != source.head:
        copied.chain = {"ok": False, "checked": 0, "message": f"the chain head is {head}, the source's {source.head}"}
        return copied
    prev, expected, checked = GENESIS, 1, 0
    while True:
        rows = await conn.fetch("SELECT id, ts, kind, actor, model, version, data, prev_hash, hash FROM events "
                                "WHERE id >= $1 ORDER BY id LIMIT $2", expected, BATCH)
        if not rows:
            verdict, *_ = end_of_log(head, prev, expected, checked)
            break
        verdict, prev, expected, checked = check_rows(rows, head, prev, expected, checked)
        if verdict is not None:
            break
    copied.chain = verdict
    return copied



# -- the target database, its errors in one line ---------------------------------------------------


class PgTarget:
    """One connection to the target database: ``async with PgTarget(dsn) as target``."""

    def __init__(self, dsn: str) -> None:
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise InvalidInput(f"--to {dsn.split('://')[0]!r}…: the target is a PostgreSQL URL, "
                               "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        self.dsn = dsn
        try:
            self.where = describe(dsn)
        except ValueError as exc:  # a port that is not a number
            raise InvalidInput(f"--to: not a usable PostgreSQL URL: {exc}") from None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> PgTarget:
        async with self._errors("cannot connect to"):
            try:
                self._conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
            except (ValueError, asyncpg.ClientConfigurationError) as exc:
                raise InvalidInput(f"--to: not a usable PostgreSQL URL ({self.where}): {exc}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close(timeout=CONNECT_TIMEOUT)

    @asynccontextmanager
    async def _errors(self, doing: str, after: str = "") -> AsyncIterator[None]:
        try:
            yield
        except ModelregError:
            raise
        except asyncpg.PostgresError as exc:  # refused (password, role, database) or a failed statement
            raise ModelregError(f"PostgreSQL at {self.where}: {exc}{after}", {"database": self.where}) from None
        except (OSError, asyncio.TimeoutError, asyncpg.InterfaceError) as exc:
            if isinstance(exc, asyncpg.InterfaceError) and lost_connection(exc) is None:
                raise
            raise DatabaseUnavailable(f"PostgreSQL: {doing} {self.where}: {exc or type(exc).__name__}",
                                      {"database": self.where}) from None

    async def state(self) -> Target:
        async with self._errors("lost the connection to"):
            return await inspect_target(self._conn)

    async def create_schema(self) -> list[int]:
        """The PostgreSQL migrations (each its own transaction); the numbers applied now."""
        async with self._errors("lost the connection to"):
            return await migrate(self._conn, self.where)

    async def copy(self, source: Source, progress: Callable[[str, int], None] | None = None) -> Copied:
        async with self._errors("lost the connection to", "; nothing was copied"):
            return await copy_registry(self._conn, source, progress)

    async def verify(self, source: Source) -> Copied:
        """``verify_rows`` in one read-only snapshot."""
        async with self._errors("lost the connection to"), \
                self._conn.transaction(isolation="repeatable_read", readonly=True):
            return await verify_rows(self._conn, source)
