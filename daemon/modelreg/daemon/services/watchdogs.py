"""Watchdogs (issue 12, PRODUCT.md §4): rules on the production version's monitoring metrics
that raise ``watchdog.fired`` and, where the owner opted in, roll production back.

Rule grammar, one rule per watchdog::

    monitoring:KEY OP THRESHOLD for N records        OP: <  <=  >  >=
    monitoring:auc < 0.85 for 3 records
    monitoring:latency_p99_ms > 40 for 1 record

It fires when the last N ``monitoring`` records of KEY on the model's production version all
meet the condition, and none of them counted in an earlier trip of this watchdog on that
version: one trip per breach, the next needs N new records (a fourth bad record after three
does not fire again; six do). A firing records a trip and a ``watchdog.fired`` event (the
watchdog, the rule, the values, whether it rolled back and to which version, or why not).

With ``rollback``, a firing rolls production back, through the lifecycle's own rollback (files
re-verified, history and serving links as for a person's), as the daemon itself
(``watchdog:ID`` in history), to the most recent former production version that has not
tripped this watchdog, at most once per cooldown. Inside the cooldown, or with no such
version, the event says so and production stays.

Evaluation runs after commit, never on the request that recorded the metric: the store's
committed ``metric.recorded`` events with a monitoring record mark their model, and one
coalesced run per model (the lifecycle's ``ServingRefresher``: retried with backoff on
failure) reads the watchdogs' facts and, only if one would fire, decides again inside one
write on fresh state, so two runs never trip twice on the same records. A model's watchdogs
are also evaluated when one is added and when the daemon starts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from modelreg.shared.errors import InvalidInput, ModelregError, NotFound
from modelreg.shared.names import validate_key, validate_name
from modelreg.shared.timefmt import iso, parse_duration

from ..store import Store
from ..store.records import StartedTrip, WatchdogFacts, WatchdogFiring, WatchdogTrip
from .identity import DAEMON, Identity
from .lifecycle import Lifecycle, ServingRefresher

DEFAULT_COOLDOWN = 3600.0
MAX_COOLDOWN = 365 * 86400.0
MAX_WINDOW = 1000
SOURCES = ("monitoring",)
INTERRUPTED = "the daemon stopped while the rollback ran; history shows whether it happened"
GRAMMAR = ("a watchdog rule is 'monitoring:KEY OP THRESHOLD for N records' with OP one of < <= > >=, "
           "e.g. 'monitoring:auc < 0.85 for 3 records'")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(rf"^([a-z-]+):(\S+?)\s*(<=|>=|<|>)\s*({_NUM})\s+for\s+(\d{{1,6}})\s+records?$")
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

log = logging.getLogger("modelreg.watchdogs")


@dataclass(frozen=True)
class WatchdogRule:
    text: str  # normalised: what is stored and shown
    source: str
    key: str
    op: str
    threshold: float
    window: int  # the last N records

    def breached(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)


def parse_watchdog_rule(text: object) -> WatchdogRule:
    """Parse one rule; raises InvalidInput that shows the grammar on a mistake."""
    if not isinstance(text, str) or not text.strip() or len(text) > 1000 or "\x00" in text:
        raise InvalidInput(GRAMMAR)
    t = " ".join(text.split())
    m = _RULE.match(t)
    if not m:
        raise InvalidInput(f"cannot read watchdog rule {t[:200]!r}: {GRAMMAR}")
    source, key, op, number, window = m.groups()
    if source not in SOURCES:
        raise InvalidInput(f"watchdog rule {t[:200]!r}: watchdogs watch production telemetry, metrics of source "
                           f"'monitoring' (write monitoring:{key}), not {source!r}")
    validate_key(key, "metric name")
    threshold = float(number)
    if not math.isfinite(threshold):
        raise InvalidInput(f"watchdog rule {t[:200]!r}: the threshold must be a finite number")
    n = int(window)
    if not 1 <= n <= MAX_WINDOW:
        raise InvalidInput(f"watchdog rule {t[:200]!r}: the window is 1 to {MAX_WINDOW} records")
    text = f"{source}:{key} {op} {number} for {n} record{'' if n == 1 else 's'}"
    return WatchdogRule(text, source, key, op, threshold, n)


def parse_cooldown(value: object) -> float:
    """A cooldown given as a duration (``30m``, ``1h``) or seconds; None: the default hour."""
    if value is None:
        return DEFAULT_COOLDOWN
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput("cooldown is a duration such as 30s, 15m or 1h")
    seconds = parse_duration(value[:40]) if isinstance(value, str) else float(value)
    if not 0 <= seconds <= MAX_COOLDOWN:
        raise InvalidInput("cooldown is between 0 seconds and 365 days")
    return seconds


def watchdog_identity(watchdog_id: int) -> Identity:
    """Who a watchdog's rollback acts as: the daemon on its own configured rule."""
    return dataclasses.replace(DAEMON, claimed=f"watchdog:{watchdog_id}")


def _actor(watchdog_id: int) -> str:
    return watchdog_identity(watchdog_id).actor


def _values(observed: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in observed)


def rollback_reason(watchdog_id: int, rule: str, observed: list[float]) -> str:
    return f"watchdog {watchdog_id} fired: {rule} (observed {_values(observed)})"


def decide(f: WatchdogFacts, now: float) -> WatchdogFiring | None:
    """Whether a watchdog fires on these facts, and where its rollback goes (synchronous: it
    also runs on the store's writer thread, on the state the trip's write sees)."""
    w = f.watchdog
    rule = parse_watchdog_rule(w.rule)
    if f.production is None or f.production_id is None or len(f.records) < rule.window:
        return None
    if any(metric_id <= f.counted_through for metric_id, _ in f.records):
        return None  # a record of an earlier trip: the next trip needs N new ones
    if not all(rule.breached(value) for _, value in f.records):
        return None
    observed = [value for _, value in reversed(f.records)]
    target, note = None, ""
    if not w.rollback:
        note = "this watchdog only raises the event (add it with --rollback to roll back)"
    elif w.last_rollback_at is not None and now < w.last_rollback_at + w.cooldown:
        note = f"cooldown until {iso(w.last_rollback_at + w.cooldown)}"
    else:
        eligible = [n for n in f.candidates if n not in f.tripped]
        if eligible:
            target = eligible[0]
        elif f.candidates:
            note = (f"no version to roll back to: every former production version tripped this watchdog "
                    f"({', '.join(f'v{n}' for n in f.candidates)})")
        else:
            note = f"no version to roll back to: {w.model} has had no other production version"
    return WatchdogFiring(watchdog_id=w.id, version_id=f.production_id, version=f.production, observed=observed,
                          last_metric_id=f.records[0][0], rollback_to=target, note=note)


def _trip_view(t: WatchdogTrip) -> dict[str, Any]:
    return {"id": t.id, "version": t.version, "at": iso(t.fired_at), "observed": t.observed,
            "rolled_back": t.rolled_back_to is not None, "to": t.rolled_back_to, "why": t.note or None,
            "running": not t.finished}


def watchdog_view(f: WatchdogFacts, now: float) -> dict[str, Any]:
    """A watchdog and its state on the production version: ``ok`` (with the last values),
    ``tripped`` (the production version tripped it; when, and what became of the rollback),
    ``cooling down`` (it rolled back less than a cooldown ago: a trip now would not), or
    ``no production``."""
    w = f.watchdog
    rule = parse_watchdog_rule(w.rule)
    until = w.last_rollback_at + w.cooldown if w.last_rollback_at is not None else None
    cooling = until is not None and now < until
    trip = next((t for t in f.trips if t.version == f.production), None)
    state = ("no production" if f.production is None else "tripped" if trip is not None
             else "cooling down" if cooling else "ok")
    values = [value for _, value in reversed(f.records)]
    return {"id": w.id, "model": w.model, "rule": w.rule, "rollback": w.rollback, "cooldown": w.cooldown,
            "created_at": iso(w.created_at), "created_by": w.created_by, "state": state,
            "production": f.production, "values": values,
            "breaching": len(values) == rule.window and all(rule.breached(v) for v in values),
            "cooldown_until": iso(until) if cooling else None, "last_fired_at": iso(w.last_fired_at),
            "last_rollback_at": iso(w.last_rollback_at), "tripped": f.tripped,
            "trip": _trip_view(trip) if trip is not None else None, "trips": [_trip_view(t) for t in f.trips]}


class Watchdogs:
    def __init__(self, store: Store, lifecycle: Lifecycle) -> None:
        self.store, self.lifecycle = store, lifecycle
        self.runs = ServingRefresher(self._evaluate)  # one coalesced, retried run per model
        store.on_commit.append(self.on_commit)

    async def start(self) -> None:
        """Finish trips a stop cut short, then evaluate every watched model once."""
        finished = await self.store.watchdogs.finish_interrupted(INTERRUPTED, _actor)
        if finished:
            log.warning("finished %d watchdog trips whose rollback a stop interrupted", finished)
        for model in await self.store.watchdogs.models():
            self.runs.mark(model)

    async def close(self) -> None:
        if self.on_commit in self.store.on_commit:
            self.store.on_commit.remove(self.on_commit)
        await self.runs.close()

    # -- managing ----------------------------------------------------------------------------------

    async def add(self, model: object, rule: object, rollback: object, cooldown: object, who: Identity) -> dict[str, Any]:
        if not isinstance(model, str):
            raise InvalidInput("model must be a model name")
        validate_name(model)
        if not isinstance(rollback, bool):
            raise InvalidInput("rollback must be true or false")
        parsed = parse_watchdog_rule(rule)
        seconds = parse_cooldown(cooldown)
        rec = await self.store.watchdogs.add(model, parsed.text, parsed.source, parsed.key, parsed.window,
                                             rollback, seconds, who.actor)
        self.runs.mark(rec.model)  # records already there count: it may fire at once
        return next(v for v in (await self.list(rec.model))["items"] if v["id"] == rec.id)

    async def remove(self, watchdog_id: int, who: Identity) -> dict[str, Any]:
        rec = await self.store.watchdogs.remove(watchdog_id, who.actor)
        return {"id": rec.id, "model": rec.model, "rule": rec.rule}

    async def list(self, model: str | None = None) -> dict[str, Any]:
        if model is not None:
            validate_name(model)
        now = time.time()
        return {"items": [watchdog_view(f, now) for f in await self.store.watchdogs.facts(model, with_trips=True)]}

    # -- evaluating --------------------------------------------------------------------------------

    def on_commit(self, events: list[dict[str, Any]]) -> None:
        """Store subscriber: a committed monitoring record marks its model for evaluation."""
        for model in {e["model"] for e in events if e.get("kind") == "metric.recorded" and e.get("model")
                      and "monitoring" in ((e.get("data") or {}).get("source") or ())}:
            self.runs.mark(model)

    async def _evaluate(self, model: str) -> None:
        """Evaluate ``model``'s watchdogs; trip those that fire, run their rollbacks."""
        try:
            now = time.time()
            if not any(decide(f, now) for f in await self.store.watchdogs.facts(model)):
                return  # the usual case: a read, no write
            started = await self.store.watchdogs.trip(model, lambda f: decide(f, time.time()), _actor)
        except NotFound:
            return  # the model was deleted or renamed meanwhile (a rename's next record marks the new name)
        for trip in started:
            await self._roll_back(trip)

    async def _roll_back(self, trip: StartedTrip) -> None:
        f = trip.firing
        who = watchdog_identity(f.watchdog_id)
        reason = rollback_reason(f.watchdog_id, trip.rule, f.observed)
        to, why = None, ""
        try:
            await self.lifecycle.rollback(trip.model, who, reason, to=f.rollback_to)
            to = f.rollback_to
        except Exception as exc:  # noqa: BLE001 - production moved meanwhile, damaged files…: the event says so
            why = f"the rollback to v{f.rollback_to} failed: {exc.message if isinstance(exc, ModelregError) else exc}"
            log.warning("watchdog %d: %s", f.watchdog_id, why, exc_info=not isinstance(exc, ModelregError))
        await self.store.watchdogs.finish(trip, to, why, who.actor)
