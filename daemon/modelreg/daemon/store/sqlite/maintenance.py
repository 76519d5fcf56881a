"""Whole-file operations on a registry database, outside the engine (backup, restore, doctor).

They open the file with their own short-lived connection, so they run the same whether a
daemon serves the home or not: a WAL reader never blocks the daemon's writer. Every function
here blocks; callers run them in a maintenance process or a thread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelreg.shared.errors import IntegrityError

from ..sql import stages
from .engine import ReadConn
from .migrations import LATEST

BACKUP_STEP_PAGES = 256  # pages copied per backup step (1 MiB at 4 KiB pages)
SERVED_STAGES = stages.SERVED_STAGES  # the stages HOME/serving/<model>/ has a link for


@dataclass(frozen=True)
class Snapshot:
    """What a copied database holds, read from the copy itself."""

    schema: int
    blobs: list[tuple[str, int]]  # every blob the copy records (sha256, size), by digest
    ready_versions: int
    last_event: int


def _connect(path: Path, *, read_only: bool = True) -> sqlite3.Connection:
    if read_only:
        # mode=ro: a check must never create an empty database where the file is missing.
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=10)
    else:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def copy_database(src: Path, dest: Path, progress: Callable[[int, int], None] | None = None) -> Snapshot:
    """SQLite's online backup of ``src`` into a new file ``dest``, in steps, while writers go on.

    The source connection holds one read transaction across every step: in WAL mode that pins
    one snapshot (so a commit by the daemon between two steps cannot make the copy restart or
    mix two states) and never blocks the daemon's writer. Everything committed before the call
    is in the copy. ``dest`` is fsynced before this returns.
    """
    try:
        source = _connect(src)
    except sqlite3.Error as exc:
        raise IntegrityError(f"cannot read {src}: {exc}") from None
    target = sqlite3.connect(dest, isolation_level=None)
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        source.backup(target, pages=BACKUP_STEP_PAGES,
                      progress=(lambda _status, remaining, total: progress(total - remaining, total)) if progress else None)
        source.execute("COMMIT")
        # A backup copies the source's journal mode; the copy is one self-contained file.
        target.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise IntegrityError(f"cannot copy {src}: {exc} (`modelreg doctor` checks the database)") from None
    finally:
        source.close()
        target.close()
    with open(dest, "rb") as f:
        os.fsync(f.fileno())
    return read_snapshot(dest)


def read_snapshot(path: Path) -> Snapshot:
    """The schema version, stored blobs, ready versions and last event id of a database file."""
    conn = _connect(path)
    try:
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        blobs = [(r["sha256"], r["size"]) for r in conn.execute("SELECT sha256, size FROM blobs ORDER BY sha256")]
        ready = conn.execute("SELECT count(*) FROM versions WHERE status = 'ready' AND deleted_at IS NULL").fetchone()[0]
        last = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    except sqlite3.Error as exc:
        raise IntegrityError(f"{path} is not a readable modelreg registry database: {exc}") from None
    finally:
        conn.close()
    return Snapshot(schema=schema, blobs=blobs, ready_versions=ready, last_event=last)


# -- doctor ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseHealth:
    opened: str | None                    # why the file could not be read at all, else None
    schema: int | None
    latest: int                           # the newest schema this code knows
    integrity: list[str]                  # integrity_check's messages; ["ok"] when sound
    foreign_keys: dict[str, int]          # table → rows whose reference is dangling
    blobs: list[tuple[str, int]]          # the blobs table: (sha256, size)
    unrecorded: list[str]                 # sha256 a version file or MLflow artifact names, absent from blobs
    served: dict[str, dict[str, tuple[int, list[tuple[str, str]]] | None]]  # model → stage → (number, files)


def database_health(path: Path) -> DatabaseHealth:
    """Everything doctor asks of the database file, read-only, in one connection."""
    try:
        conn = _connect(path)
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        return DatabaseHealth(str(exc), None, LATEST, [], {}, [], [], {})
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        fk: dict[str, int] = {}
        for r in conn.execute("PRAGMA foreign_key_check"):
            fk[r[0]] = fk.get(r[0], 0) + 1
        if schema > LATEST or schema == 0:
            return DatabaseHealth(None, schema, LATEST, integrity, fk, [], [], {})
        blobs = [(r["sha256"], r["size"]) for r in conn.execute("SELECT sha256, size FROM blobs ORDER BY sha256")]
        unrecorded = [r[0] for r in conn.execute(
            "SELECT DISTINCT mf.sha256 FROM manifest mf JOIN versions v ON v.id = mf.version_id "
            "WHERE v.purged_at IS NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = mf.sha256) "
            "UNION SELECT a.sha256 FROM mlflow_artifacts a WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = a.sha256) "
            "ORDER BY 1")]
        q = ReadConn(conn)
        served: dict[str, dict[str, tuple[int, list[tuple[str, str]]] | None]] = {}
        for model in stages.served_models(q):
            served[model] = {t.stage: (t.version.number, [(f.path, f.sha256) for f in t.files]) if t.version else None
                             for t in stages.serving_targets(q, model)}
        return DatabaseHealth(None, schema, LATEST, integrity, fk, blobs, unrecorded, served)
    except sqlite3.DatabaseError as exc:
        return DatabaseHealth(str(exc), schema, LATEST, [], {}, [], [], {})
    finally:
        conn.close()


def blob_users(path: Path, digests: list[str]) -> dict[str, list[str]]:
    """For each digest, the version files (``NAME@N:path``) and MLflow artifacts that hold it."""
    conn = _connect(path)
    try:
        out: dict[str, list[str]] = {}
        for sha in digests:
            out[sha] = [f"{r['name']}@{r['number']}:{r['path']}" for r in conn.execute(
                "SELECT m.name, v.number, mf.path FROM manifest mf JOIN versions v ON v.id = mf.version_id "
                "JOIN models m ON m.id = v.model_id WHERE mf.sha256 = ? AND v.purged_at IS NULL "
                "ORDER BY m.name, v.number, mf.path", (sha,))]
            out[sha] += [f"mlflow-artifacts:/{r['path']}" for r in conn.execute(
                "SELECT path FROM mlflow_artifacts WHERE sha256 = ? ORDER BY path", (sha,))]
        return out
    finally:
        conn.close()
