"""Watchdogs and their trips (issue 12).

A watchdog is a rule on a model's production monitoring metrics. Whether it fires is policy
(``services/watchdogs.py``); the store reads what the rule looks at (``WatchdogFacts``) and,
in one write, runs the service's synchronous ``decide`` on that fresh state and records each
firing: a ``watchdog_trips`` row, and either its ``watchdog.fired`` event (no rollback) or the
start of a rollback (the cooldown taken; the event follows in ``finish`` once the lifecycle's
rollback has run or failed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelreg.shared.errors import NotFound

from ..records import StartedTrip, WatchdogFacts, WatchdogFiring, WatchdogRecord, WatchdogTrip
from . import catalog, events
from .tx import Sql, Engine, WriteTx

RECENT_TRIPS = 20  # trips a view shows per watchdog
_WATCHDOG = "SELECT w.*, m.name AS model FROM watchdogs w JOIN models m ON m.id = w.model_id"
_LIVE_MODEL = "m.deleted_at IS NULL"

Decide = Callable[[WatchdogFacts], WatchdogFiring | None]


def watchdog_record(row: Any) -> WatchdogRecord:
    return WatchdogRecord(id=row["id"], model=row["model"], rule=row["rule"], rollback=bool(row["rollback"]),
                          cooldown=row["cooldown"], created_at=row["created_at"], created_by=row["created_by"],
                          last_fired_at=row["last_fired_at"], last_rollback_at=row["last_rollback_at"])


def trip_record(row: Any) -> WatchdogTrip:
    return WatchdogTrip(id=row["id"], watchdog_id=row["watchdog_id"], version=row["number"],
                        observed=json.loads(row["observed"]), rollback_to=row["rollback_to"],
                        rolled_back_to=row["rolled_back_to"], note=row["note"], fired_at=row["fired_at"],
                        finished=row["event_id"] is not None)


def _rows(q: Sql, model: str | None) -> list[Any]:
    if model is None:
        return q.all(f"{_WATCHDOG} WHERE {_LIVE_MODEL} ORDER BY w.id")
    return q.all(f"{_WATCHDOG} WHERE w.model_id = ? ORDER BY w.id", (catalog.model_id(q, model),))


def facts(q: Sql, row: Any, with_trips: bool = False) -> WatchdogFacts:
    """What one watchdog looks at now (``row``: a ``_WATCHDOG`` row)."""
    rec = watchdog_record(row)
    prod = q.one("SELECT id, number FROM versions WHERE model_id = ? AND stage = 'production'", (row["model_id"],))
    records: list[tuple[int, float]] = []
    counted = 0
    if prod is not None:
        records = [(r["id"], r["value"]) for r in q.all(
            "SELECT id, value FROM metrics WHERE version_id = ? AND key = ? AND source = ? ORDER BY id DESC LIMIT ?",
            (prod["id"], row["metric_key"], row["source"], row["window_size"]))]
        counted = q.one("SELECT coalesce(max(last_metric_id), 0) AS n FROM watchdog_trips "
                        "WHERE watchdog_id = ? AND version_id = ?", (rec.id, prod["id"]))["n"]
    # Former production versions, the most recently deployed first; deleted, failed or purged
    # ones can never go back into production.
    candidates = [r["number"] for r in q.all(
        "SELECT v.number, max(sc.id) AS last FROM stage_changes sc JOIN versions v ON v.id = sc.version_id "
        "WHERE sc.model_id = ? AND sc.to_stage = 'production' AND v.stage != 'production' "
        "AND v.deleted_at IS NULL AND v.purged_at IS NULL AND v.status = 'ready' "
        "GROUP BY v.id ORDER BY last DESC", (row["model_id"],))]
    tripped = [r["number"] for r in q.all(
        "SELECT DISTINCT v.number FROM watchdog_trips t JOIN versions v ON v.id = t.version_id "
        "WHERE t.watchdog_id = ? ORDER BY v.number", (rec.id,))]
    trips = _trips(q, rec.id, RECENT_TRIPS) if with_trips else []
    return WatchdogFacts(watchdog=rec, production_id=prod["id"] if prod else None,
                         production=prod["number"] if prod else None, records=records, counted_through=counted,
                         candidates=candidates, tripped=tripped, trips=trips)


def _trips(q: Sql, watchdog_id: int, limit: int) -> list[WatchdogTrip]:
    return [trip_record(r) for r in q.all(
        "SELECT t.*, v.number FROM watchdog_trips t JOIN versions v ON v.id = t.version_id "
        "WHERE t.watchdog_id = ? ORDER BY t.id DESC LIMIT ?", (watchdog_id, limit))]


def list_facts(q: Sql, model: str | None) -> list[WatchdogFacts]:
    return [facts(q, row, with_trips=True) for row in _rows(q, model)]


def models_watched(q: Sql) -> list[str]:
    return [r["name"] for r in q.all(f"SELECT DISTINCT m.name FROM watchdogs w JOIN models m ON m.id = w.model_id "
                                     f"WHERE {_LIVE_MODEL}")]


# -- writes ----------------------------------------------------------------------------------------


def _fired_event(tx: WriteTx, watchdog_id: int, trip_id: int, model: str, version: int, rule: str,
                 observed: list[float], rolled_back_to: int | None, why: str, actor: str) -> None:
    event = events.append(tx, "watchdog.fired", actor, model=model, version=version, data={
        "id": watchdog_id, "trip": trip_id, "rule": rule, "observed": observed,
        "rolled_back": rolled_back_to is not None, "to": rolled_back_to, "why": why or None})
    tx.execute("UPDATE watchdog_trips SET rolled_back_to = ?, note = ?, event_id = ? WHERE id = ?",
               (rolled_back_to, why, event["id"], trip_id))


def add(tx: WriteTx, model: str, rule: str, source: str, key: str, window: int, rollback: bool, cooldown: float,
        actor: str) -> WatchdogRecord:
    mid = catalog.model_id(tx, model)
    wid = tx.one("INSERT INTO watchdogs (model_id, rule, source, metric_key, window_size, rollback, cooldown, "
                 "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                 (mid, rule, source, key, window, int(rollback), cooldown, tx.now, actor))["id"]
    rec = watchdog_record(tx.one(f"{_WATCHDOG} WHERE w.id = ?", (wid,)))
    events.append(tx, "watchdog.added", actor, model=rec.model,
                  data={"id": wid, "rule": rule, "rollback": rollback, "cooldown": cooldown})
    return rec


def remove(tx: WriteTx, watchdog_id: int, actor: str) -> WatchdogRecord:
    row = tx.one(f"{_WATCHDOG} WHERE w.id = ?", (watchdog_id,))
    if row is None:
        raise NotFound(f"no watchdog {watchdog_id}; modelreg watchdog list shows them")
    tx.execute("DELETE FROM watchdogs WHERE id = ?", (watchdog_id,))
    rec = watchdog_record(row)
    events.append(tx, "watchdog.removed", actor, model=rec.model, data={"id": watchdog_id, "rule": rec.rule})
    return rec


def trip(tx: WriteTx, model: str, decide: Decide, actor: Callable[[int], str]) -> list[StartedTrip]:
    """Run ``decide`` on each of the model's watchdogs on the state this write sees; record each
    firing. A firing without a rollback gets its event now; one with a rollback takes the
    cooldown and is returned, its event written by ``finish``."""
    started = []
    for row in _rows(tx, model):
        firing = decide(facts(tx, row))
        if firing is None:
            continue
        tid = tx.one("INSERT INTO watchdog_trips (watchdog_id, version_id, observed, last_metric_id, rollback_to, "
                     "note, fired_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                     (firing.watchdog_id, firing.version_id, json.dumps(firing.observed), firing.last_metric_id,
                      firing.rollback_to, firing.note, tx.now))["id"]
        if firing.rollback_to is None:
            tx.execute("UPDATE watchdogs SET last_fired_at = ? WHERE id = ?", (tx.now, firing.watchdog_id))
            _fired_event(tx, firing.watchdog_id, tid, row["model"], firing.version, row["rule"], firing.observed,
                         None, firing.note, actor(firing.watchdog_id))
            continue
        tx.execute("UPDATE watchdogs SET last_fired_at = ?, last_rollback_at = ? WHERE id = ?",
                   (tx.now, tx.now, firing.watchdog_id))
        started.append(StartedTrip(trip_id=tid, firing=firing, model=row["model"], rule=row["rule"],
                                   previous_rollback_at=row["last_rollback_at"]))
    return started


def finish(tx: WriteTx, started: StartedTrip, rolled_back_to: int | None, why: str, actor: str) -> None:
    """A started trip's outcome: its watchdog.fired event; a failed rollback gives the cooldown back."""
    if rolled_back_to is None:
        tx.execute("UPDATE watchdogs SET last_rollback_at = ? WHERE id = ?",
                   (started.previous_rollback_at, started.firing.watchdog_id))
    f = started.firing
    _fired_event(tx, f.watchdog_id, started.trip_id, started.model, f.version, started.rule, f.observed,
                 rolled_back_to, why, actor)


def finish_interrupted(tx: WriteTx, why: str, actor: Callable[[int], str]) -> int:
    """At start-up: trips whose rollback a stop cut short get their event. The rollback happened
    if the watchdog's own rollback of that version is in the stage history after the trip."""
    rows = tx.all("SELECT t.*, v.number, v.model_id, w.rule, m.name AS model FROM watchdog_trips t "
                  "JOIN versions v ON v.id = t.version_id JOIN watchdogs w ON w.id = t.watchdog_id "
                  "JOIN models m ON m.id = v.model_id WHERE t.event_id IS NULL ORDER BY t.id")
    for r in rows:
        done = tx.one("SELECT 1 FROM stage_changes WHERE model_id = ? AND number = ? AND to_stage = 'production' "
                      "AND kind = 'rollback' AND actor = ? AND ts >= ?",
                      (r["model_id"], r["rollback_to"], actor(r["watchdog_id"]), r["fired_at"]))
        if done is None:
            tx.execute("UPDATE watchdogs SET last_rollback_at = NULL WHERE id = ? AND last_rollback_at = ?",
                       (r["watchdog_id"], r["fired_at"]))
        _fired_event(tx, r["watchdog_id"], r["id"], r["model"], r["number"], r["rule"], json.loads(r["observed"]),
                     r["rollback_to"] if done else None, "" if done else why, actor(r["watchdog_id"]))
    return len(rows)


class WatchdogStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def add(self, model: str, rule: str, source: str, key: str, window: int, rollback: bool, cooldown: float,
                  actor: str) -> WatchdogRecord:
        return await self.engine.write(lambda tx: add(tx, model, rule, source, key, window, rollback, cooldown, actor))

    async def remove(self, watchdog_id: int, actor: str) -> WatchdogRecord:
        return await self.engine.write(lambda tx: remove(tx, watchdog_id, actor))

    async def facts(self, model: str | None = None, with_trips: bool = False) -> list[WatchdogFacts]:
        """Each watchdog of ``model`` (None: of every model) with what it looks at now (one read)."""
        if with_trips:
            return await self.engine.read(lambda q: list_facts(q, model))
        return await self.engine.read(lambda q: [facts(q, row) for row in _rows(q, model)])

    async def models(self) -> list[str]:
        """The models that have watchdogs."""
        return await self.engine.read(models_watched)

    async def trip(self, model: str, decide: Decide, actor: Callable[[int], str]) -> list[StartedTrip]:
        return await self.engine.write(lambda tx: trip(tx, model, decide, actor))

    async def finish(self, started: StartedTrip, rolled_back_to: int | None, why: str, actor: str) -> None:
        await self.engine.write(lambda tx: finish(tx, started, rolled_back_to, why, actor))

    async def finish_interrupted(self, why: str, actor: Callable[[int], str]) -> int:
        return await self.engine.write(lambda tx: finish_interrupted(tx, why, actor))
