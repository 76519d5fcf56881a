"""Drop-folder watches and the ingest journal.

The journal makes a drop exactly-once: ``taken`` when the watcher hands it over,
``registered`` (or ``duplicate``) in the same transaction as the version, ``done`` once a
moved drop has left the folder, ``failed`` or ``ignored`` with a message. The daemon that
takes a watch (at start-up, or from a daemon that died: ``leases.py``) first finishes what
a crash interrupted (``unfinished``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from modelreg.shared.errors import Conflict

from ..records import DropOutcome, JournalRecord, VersionRecord, WatchRecord
from . import events, versions
from .tx import Sql, Engine, WriteTx


def watch_record(row: Any) -> WatchRecord:
    return WatchRecord(id=row["id"], path=row["path"], model=row["model"], mode=row["mode"], settle=row["settle"],
                       poll=bool(row["poll"]), include=json.loads(row["include"]), exclude=json.loads(row["exclude"]),
                       created_at=row["created_at"])


def all_watches(q: Sql, order: str = "id") -> list[WatchRecord]:
    sql = "SELECT * FROM watches ORDER BY " + ("path" if order == "path" else "id")
    return [watch_record(r) for r in q.all(sql)]


def drop_counts(q: Sql) -> dict[int, dict[str, int]]:
    """Journal rows per watch and state."""
    out: dict[int, dict[str, int]] = {}
    for r in q.all("SELECT watch_id, state, count(*) AS n FROM ingest_journal GROUP BY watch_id, state"):
        out.setdefault(r["watch_id"], {})[r["state"]] = r["n"]
    return out


def find_watch(q: Sql, key: str, real: str | None) -> WatchRecord | None:
    """A watch by id (digits) or by path (as given, or ``real``, its resolved form)."""
    row = None
    if key.isdigit():
        row = q.one("SELECT * FROM watches WHERE id = ?", (int(key),))
    if row is None:
        row = q.one("SELECT * FROM watches WHERE path = ? OR path = ?", (key, real if real is not None else key))
    return watch_record(row) if row is not None else None


def add_watch(tx: WriteTx, path: str, model: str | None, mode: str, settle: float, poll: bool,
              include: Sequence[str], exclude: Sequence[str], actor: str) -> WatchRecord:
    if tx.one("SELECT 1 FROM watches WHERE path = ?", (path,)):
        raise Conflict(f"{path} is already watched")
    watch_id = tx.one(
        "INSERT INTO watches (path, model, mode, settle, poll, include, exclude, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (path, model, mode, float(settle), int(bool(poll)), json.dumps(list(include)), json.dumps(list(exclude)),
         tx.now))["id"]
    events.append(tx, "watch.added", actor, model=model,
                  data={"path": path, "mode": mode, "settle": settle, "poll": bool(poll),
                        "include": list(include), "exclude": list(exclude)})
    return WatchRecord(id=watch_id, path=path, model=model, mode=mode, settle=float(settle), poll=bool(poll),
                       include=list(include), exclude=list(exclude), created_at=tx.now)


def remove_watch(tx: WriteTx, watch: WatchRecord, actor: str) -> None:
    tx.execute("DELETE FROM ingest_journal WHERE watch_id = ?", (watch.id,))
    tx.execute("DELETE FROM watch_leases WHERE watch_id = ?", (watch.id,))
    tx.execute("DELETE FROM watches WHERE id = ?", (watch.id,))
    events.append(tx, "watch.removed", actor, model=watch.model, data={"path": watch.path})


def last_entry(q: Sql, watch_id: int, entry: str) -> tuple[str, str] | None:
    """(fingerprint, state) of the entry's newest journal row."""
    row = q.one("SELECT fingerprint, state FROM ingest_journal WHERE watch_id = ? AND entry = ? "
                "ORDER BY id DESC LIMIT 1", (watch_id, entry))
    return (row["fingerprint"], row["state"]) if row is not None else None


def journal(tx: WriteTx, watch_id: int, entry: str, fingerprint: str, state: str, message: str,
            event: str, model: str | None, data: dict[str, Any]) -> int:
    entry_id = tx.one(
        "INSERT INTO ingest_journal (watch_id, entry, fingerprint, state, message, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id", (watch_id, entry, fingerprint, state, message, tx.now, tx.now))["id"]
    events.append(tx, event, "drop", model=model, data=data)
    return entry_id


def register_drop(tx: WriteTx, journal_id: int, model: str, reg: versions.NewVersion, files: Sequence[versions.File],
                  actor: str, data: Callable[[str, VersionRecord], dict[str, Any]]) -> DropOutcome:
    """The drop's version (or the version it duplicates) and its journal state, in one transaction.

    ``data(outcome, version)`` gives the drop event's data: ``drop.duplicate`` or ``drop.registered``.
    """
    digest = versions.content_digest(files)
    dup = versions.duplicate_of(tx, model, digest)
    if dup is not None:
        tx.execute("UPDATE ingest_journal SET state = 'duplicate', model = ?, version_id = ?, updated_at = ?, "
                   "message = ? WHERE id = ?", (dup.model_name, dup.id, tx.now, f"same content as {dup.ref}", journal_id))
        events.append(tx, "drop.duplicate", "drop", model=dup.model_name, version=dup.number,
                      data=data("duplicate", dup))
        return DropOutcome("duplicate", dup)
    rec = versions.create_ready(tx, model, reg, files, actor)
    tx.execute("UPDATE ingest_journal SET state = 'registered', model = ?, version_id = ?, updated_at = ? WHERE id = ?",
               (rec.model_name, rec.id, tx.now, journal_id))
    events.append(tx, "drop.registered", "drop", model=rec.model_name, version=rec.number,
                  data=data("registered", rec))
    return DropOutcome("registered", rec)


def finish(tx: WriteTx, journal_id: int) -> None:
    tx.execute("UPDATE ingest_journal SET state = CASE state WHEN 'duplicate' THEN 'duplicate' ELSE 'done' END, "
               "updated_at = ? WHERE id = ?", (tx.now, journal_id))


def fail_drop(tx: WriteTx, journal_id: int, message: str, model: str | None, data: dict[str, Any]) -> None:
    tx.execute("UPDATE ingest_journal SET state = 'failed', message = ?, updated_at = ? WHERE id = ?",
               (message, tx.now, journal_id))
    events.append(tx, "drop.failed", "drop", model=model, data=data)


def unfinished(q: Sql, watch_id: int) -> list[JournalRecord]:
    rows = q.all("SELECT j.id, j.watch_id, j.entry, j.fingerprint, j.state, w.path, w.mode FROM ingest_journal j "
                 "JOIN watches w ON w.id = j.watch_id WHERE j.state IN ('taken', 'registered') AND j.watch_id = ? "
                 "ORDER BY j.id", (watch_id,))
    return [JournalRecord(id=r["id"], watch_id=r["watch_id"], entry=r["entry"], fingerprint=r["fingerprint"],
                          state=r["state"], watch_path=r["path"], watch_mode=r["mode"]) for r in rows]


class WatchStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- watches ---------------------------------------------------------------------------------

    async def all(self, order: str = "id") -> list[WatchRecord]:
        """Every watch, by id (or by ``path``)."""
        return await self.engine.read(lambda q: all_watches(q, order))

    async def with_counts(self) -> list[tuple[WatchRecord, dict[str, int]]]:
        """Every watch by path, with its journal rows counted per state (one read)."""
        def read(q: Sql) -> list[tuple[WatchRecord, dict[str, int]]]:
            counts = drop_counts(q)
            return [(w, counts.get(w.id, {})) for w in all_watches(q, "path")]
        return await self.engine.read(read)

    async def find(self, key: str, real: str | None = None) -> WatchRecord | None:
        return await self.engine.read(lambda q: find_watch(q, key, real))

    async def add(self, path: str, model: str | None, mode: str, settle: float, poll: bool,
                  include: Sequence[str], exclude: Sequence[str], actor: str) -> WatchRecord:
        """One transaction: the watch (Conflict when the path is watched already) and watch.added."""
        return await self.engine.write(
            lambda tx: add_watch(tx, path, model, mode, settle, poll, include, exclude, actor))

    async def remove(self, watch: WatchRecord, actor: str) -> None:
        """One transaction: the watch, its journal, and watch.removed."""
        await self.engine.write(lambda tx: remove_watch(tx, watch, actor))

    # -- the ingest journal ----------------------------------------------------------------------

    async def last_entry(self, watch_id: int, entry: str) -> tuple[str, str] | None:
        return await self.engine.read(lambda q: last_entry(q, watch_id, entry))

    async def ignored(self, watch_id: int, entry: str, fingerprint: str, reason: str, model: str | None,
                      data: dict[str, Any]) -> None:
        """An entry that is not a model: an ``ignored`` journal row and drop.ignored."""
        await self.engine.write(
            lambda tx: journal(tx, watch_id, entry, fingerprint, "ignored", reason, "drop.ignored", model, data))

    async def taken(self, watch_id: int, entry: str, fingerprint: str, model: str | None,
                    data: dict[str, Any]) -> int:
        """A drop handed over for ingest: a ``taken`` journal row and drop.detected; the row's id."""
        return await self.engine.write(
            lambda tx: journal(tx, watch_id, entry, fingerprint, "taken", "", "drop.detected", model, data))

    async def forget(self, journal_id: int) -> None:
        """Drop a journal row (the drop changed, or nothing was registered for it before a crash)."""
        await self.engine.write(lambda tx: tx.execute("DELETE FROM ingest_journal WHERE id = ?", (journal_id,)))

    async def register_drop(self, journal_id: int, model: str, reg: versions.NewVersion,
                            files: Sequence[versions.File], actor: str,
                            data: Callable[[str, VersionRecord], dict[str, Any]]) -> DropOutcome:
        """One transaction: a new ready version, or the duplicate found, with the journal state and event."""
        return await self.engine.write(lambda tx: register_drop(tx, journal_id, model, reg, files, actor, data))

    async def finish(self, journal_id: int) -> None:
        await self.engine.write(lambda tx: finish(tx, journal_id))

    async def fail_drop(self, journal_id: int, message: str, model: str | None, data: dict[str, Any]) -> None:
        await self.engine.write(lambda tx: fail_drop(tx, journal_id, message, model, data))

    async def unfinished(self, watch_id: int) -> list[JournalRecord]:
        """The watch's journal rows a crash left ``taken`` or ``registered``."""
        return await self.engine.read(lambda q: unfinished(q, watch_id))
