"""Stage transitions, gates, rollback, history and aliases (PRODUCT.md §4).

A transition runs its command gates first (they take time and never hold the write lock),
then one store write re-reads the version and the production version, evaluates the other
rules on that fresh state through ``decide`` (synchronous, no I/O) and commits either the
refusal or the change: the stage change, the archiving of the previous production version,
the stage_changes rows and the hash-chained events.

The serving symlinks follow after commit (``ServingRefresher``): a subscriber to committed
``stage.changed`` events, which the request also waits for so that a promotion's reply comes
after its link swap in the normal case. A failure there (an ``OSError`` under HOME/serving)
is logged and retried with backoff; it never changes the reply of a committed change, and
start-up repairs whatever a crash or a failure left behind.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict, GateFailed, IntegrityError, InvalidInput
from modelreg.shared.names import parse_ref, validate_alias, validate_name, validate_stage
from modelreg.shared.timefmt import iso, parse_time

from ..artifacts import serving
from ..artifacts.blobs import BlobStore
from ..store import Store
from ..store.records import FileRecord, GateDecision, GateFacts, VersionRecord
from .gates import Candidate, Rule, candidate, evaluate, evaluate_now, rules_of

TARGETS = ("staging", "production", "archived")
MAX_REASON = 2000
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # serving refresh retries; the last repeats

log = logging.getLogger("modelreg.lifecycle")


class Lifecycle:
    def __init__(self, store: Store, blobs: BlobStore, pool: Executor, home: Path, url: str = "") -> None:
        self.store, self.blobs, self.pool, self.home, self.url = store, blobs, pool, home, url
        self.serving = ServingRefresher(self._refresh_serving_now)
        store.on_commit.append(self.on_commit)  # committed stage changes refresh the serving links

    # -- gates ---------------------------------------------------------------------------------

    def _candidate(self, facts: GateFacts, baseline: str = "production") -> Candidate:
        v = facts.version
        return candidate(facts, artifacts=lambda: self._materialise_str(v.id, v.model_name, v.number),
                         env={"MODELREG_URL": self.url}, baseline=baseline)

    async def check(self, ref: str, to: str) -> dict[str, Any]:
        """Dry run: the verdict a transition to ``to`` (or moving alias ``@ALIAS``) would get now."""
        if isinstance(to, str) and to.startswith("@"):
            facts, gates = await self.store.stages.alias_candidate(parse_ref(ref), validate_alias(to[1:]))
            return await evaluate(rules_of(gates), self._candidate(facts, to), to)
        to = _target(to)
        facts, gates = await self.store.stages.candidate(parse_ref(ref), to)
        rules = rules_of(gates) if to in ("staging", "production") else []
        return await evaluate(rules, self._candidate(facts), to)

    # -- transitions -----------------------------------------------------------------------------

    async def transition(self, ref: str, to: str, actor: str, reason: str = "", force: bool = False) -> dict[str, Any]:
        to = _target(to)
        reason = _reason(reason)
        if force and not reason:
            raise InvalidInput("--force needs a --reason: overrides are audited")
        if to == "archived" and not reason:
            raise InvalidInput("archiving needs a --reason")
        gated = to in ("staging", "production")
        facts, gates = await self.store.stages.candidate(parse_ref(ref), to)
        _check_movable(facts.version, to)
        rules = rules_of(gates) if gated else []
        # Command gates run before the write lock is taken; the rest is evaluated inside it.
        command_rules = [(r, t) for r, t in rules if r.kind == "command"]
        command_results: list[dict[str, Any]] = []
        if command_rules:
            command_results = (await evaluate(command_rules, self._candidate(facts), to))["rules"]

        def decide(fresh: GateFacts) -> GateDecision:
            """On the state the write sees (synchronous: runs on the writer's thread)."""
            _check_movable(fresh.version, to)
            decision = _decision(rules, command_results, candidate(fresh), to, force)
            return decision if gated else GateDecision(allowed=decision.allowed, forced=decision.forced, verdict=None)

        outcome = await self.store.stages.transition(facts.version.id, to, actor, reason, decide)
        row = outcome.before
        if not outcome.decision.allowed:
            raise _refusal(row.ref, to, outcome.decision.verdict or {})
        await self._serving_followed(row.model_name)
        return {"version": outcome.view, "verdict": outcome.decision.verdict if gated else None,
                "archived": outcome.archived}

    async def rollback(self, name: str, actor: str, reason: str, to: int | None = None) -> dict[str, Any]:
        reason = _reason(reason)
        if not reason:
            raise InvalidInput("a rollback needs a --reason")
        validate_name(name)
        plan = await self.store.stages.rollback_plan(name, parse_ref(f"{name}@{int(to)}") if to is not None else None)
        current, target = plan.current, plan.target
        if current is None:
            raise Conflict(f"{name} has no production version to roll back from")
        if target is None:
            raise Conflict(f"{name} has had no other production version; name one with --to N")
        if target.id == current.id:
            raise Conflict(f"{name}@{target.number} is already in production")
        _check_movable(target, "production")
        await self._verify_blobs(target, plan.target_files)

        def check(now_prod: VersionRecord | None, fresh: VersionRecord) -> None:
            if now_prod is None or now_prod.id != current.id:
                raise Conflict(f"{name}'s production version changed during the rollback; look again and retry")
            if fresh.status != "ready" or fresh.purged_at or fresh.deleted_at:
                raise Conflict(f"{name}@{target.number} can no longer be deployed")

        await self.store.stages.rollback(current.id, target.id, actor, reason, check)
        await self._serving_followed(current.model_name)
        return {"model": current.model_name, "from": current.number, "to": target.number, "reason": reason}

    async def _verify_blobs(self, row: VersionRecord, files: list[FileRecord]) -> None:
        """Re-hash a rollback target's files before it goes back into production."""
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(self.pool, self.blobs.verify, f.sha256) for f in files))
        bad = [f"{f.path} ({status})" for f, status in zip(files, results) if status != "ok"]
        if bad:
            raise IntegrityError(f"{row.ref} cannot be restored, its files are damaged: " + ", ".join(bad),
                                 {"files": bad})

    # -- serving handoff -------------------------------------------------------------------------

    async def _materialise_str(self, version_id: int, model: str, number: int) -> str:
        return str(await self.materialise(version_id, model, number))

    async def materialise(self, version_id: int, model: str, number: int,
                          files: list[FileRecord] | None = None) -> Path:
        if files is None:
            files = await self.store.stages.files(version_id)
        pairs = [(f.path, f.sha256) for f in files]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, serving.materialise, self.home, self.blobs, model, number, pairs)

    def on_commit(self, events: list[dict[str, Any]]) -> None:
        """Store subscriber: a committed stage change schedules its model's serving refresh."""
        for model in {e["model"] for e in events if e.get("kind") == "stage.changed" and e.get("model")}:
            self.serving.mark(model)

    async def refresh_serving(self, model: str) -> bool:
        """Bring HOME/serving/<model> up to date and wait for it; False (logged, retried later) on failure."""
        return await self.serving.wait(model)

    async def _serving_followed(self, model: str) -> None:
        """After a committed stage change: wait for the refresh its commit started (never raises)."""
        await self.serving.wait(model, marked=True)

    async def _refresh_serving_now(self, model: str) -> None:
        """Point HOME/serving/<model>/{production,staging} at what the database says now."""
        loop = asyncio.get_running_loop()
        for t in await self.store.stages.serving_targets(model):
            target = None
            if t.version is not None:
                target = await self.materialise(t.version.id, t.model, t.version.number, t.files)
            await loop.run_in_executor(self.pool, serving.point_serving, self.home, t.model, t.stage, target)

    async def refresh_all_serving(self) -> None:
        """Start-up repair: a crash between a commit and its symlink swap is put right here.

        Models with a folder under HOME/serving are refreshed too: the commit may have emptied
        the model's served stages (its last production version archived), leaving a link that
        nothing in the database names any more."""
        models = {m.lower(): m for m in await asyncio.get_running_loop().run_in_executor(
            self.pool, serving.linked_models, self.home)}
        models.update((m.lower(), m) for m in await self.store.stages.served_models())
        await asyncio.gather(*(self.serving.wait(m) for m in models.values()))

    async def close(self) -> None:
        if self.on_commit in self.store.on_commit:
            self.store.on_commit.remove(self.on_commit)
        await self.serving.close()

    # -- history and aliases ------------------------------------------------------------------------

    async def history(self, name: str, at: str | None = None, limit: int = 200) -> dict[str, Any]:
        changes = await self.store.stages.history(validate_name(name))
        items = [{"id": c.id, "ts": iso(c.ts), "version": c.number, "from": c.from_stage, "to": c.to_stage,
                  "kind": c.kind, "actor": c.actor, "reason": c.reason, "forced": c.forced,
                  "passed": c.verdict["passed"] if c.verdict else None, "event_id": c.event_id} for c in changes]
        out: dict[str, Any] = {"model": name, "items": items[-limit:], "total": len(items)}
        if at is not None:
            when = parse_time(at)
            try:
                shown = iso(when)
            except (OverflowError, OSError, ValueError):
                raise InvalidInput(f"time {at[:50]!r} is out of range") from None
            stages: dict[int, str] = {}
            for c in changes:
                if c.ts <= when:
                    stages[c.number] = c.to_stage
            out["at"] = {"time": shown,
                         "production": next((n for n, s in stages.items() if s == "production"), None),
                         "staging": sorted(n for n, s in stages.items() if s == "staging")}
        return out

    async def aliases(self, name: str) -> dict[str, Any]:
        return {"model": name, "aliases": await self.store.stages.aliases(validate_name(name))}

    async def set_alias(self, name: str, alias: str, number: int, actor: str, reason: str | None = "",
                        force: bool = False) -> dict[str, Any]:
        """Point NAME@ALIAS at ``number`` through the alias's gates, as a transition goes through a
        stage's: command gates first, the other rules inside the write on fresh state; a refusal
        is audited (``alias.refused``) and raised as GateFailed, unless forced with a reason."""
        validate_alias(alias)
        reason = _reason(reason)
        if force and not reason:
            raise InvalidInput("--force needs a --reason: overrides are audited")
        ref = parse_ref(f"{validate_name(name)}@{int(number)}")  # the caller's number, checked as any ref is
        facts, gates = await self.store.stages.alias_candidate(ref, alias)
        if not gates:
            outcome = await self.store.stages.set_alias(ref, alias, actor)
            return {"model": name, "aliases": outcome.aliases, "verdict": None}
        target = f"@{alias}"
        rules = rules_of(gates)
        command_rules = [(r, t) for r, t in rules if r.kind == "command"]
        command_results: list[dict[str, Any]] = []
        if command_rules:
            command_results = (await evaluate(command_rules, self._candidate(facts, target), target))["rules"]

        def decide(fresh: GateFacts) -> GateDecision:
            """On the state the write sees (synchronous: runs on the writer's thread)."""
            return _decision(rules, command_results, candidate(fresh, baseline=target), target, force)

        outcome = await self.store.stages.set_alias(ref, alias, actor, decide, reason)
        if outcome.decision is not None and not outcome.decision.allowed:
            raise _refusal(outcome.before.ref, target, outcome.decision.verdict or {})
        return {"model": name, "aliases": outcome.aliases, "verdict": outcome.decision.verdict if outcome.decision else None}

    async def remove_alias(self, name: str, alias: str, actor: str) -> dict[str, Any]:
        return {"model": name, "aliases": await self.store.stages.remove_alias(validate_name(name), alias, actor)}


class ServingRefresher:
    """Runs a model's serving refresh after commit: coalesced per model, retried on failure.

    ``mark(model)`` says the database changed for a model (the commit subscriber calls it for
    each committed stage change, before the writer's caller resumes); ``wait(model)`` waits
    for a run that started reading after the latest mark, so a caller whose change was
    marked shares the run its commit started instead of starting a second one. A failed run
    is logged and retried with backoff until one succeeds (a new mark cuts the wait short);
    its waiters get False, never the exception.
    """

    def __init__(self, refresh: Callable[[str], Awaitable[None]], delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._refresh = refresh
        self._delays = delays
        self._seq = 0  # one per mark
        self._models: dict[str, _ModelRefresh] = {}

    def mark(self, model: str) -> _ModelRefresh:
        self._seq += 1
        key = model.lower()  # names are unique without regard to case
        state = self._models.get(key)
        if state is None:
            state = self._models[key] = _ModelRefresh(model)
            state.task = asyncio.create_task(self._run(key, state))
        state.model, state.wanted = model, self._seq
        state.wake.set()
        return state

    async def wait(self, model: str, marked: bool = False) -> bool:
        """Refresh ``model`` and wait for it; ``marked``: its change was already marked by the subscriber."""
        if marked:
            state = self._models.get(model.lower())
            if state is None:  # the run that covers the change has already succeeded
                return True
        else:
            state = self.mark(model)
        if state.running is not None and state.running >= state.wanted:
            future = state.current
        else:
            future = state.next
        return await asyncio.shield(future)

    async def _run(self, key: str, state: _ModelRefresh) -> None:
        try:
            await self._loop(key, state)
        finally:  # cancelled at shutdown: nobody waits forever
            _settle(state.current, False)
            _settle(state.next, False)

    async def _loop(self, key: str, state: _ModelRefresh) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            state.wake.clear()
            start = state.running = state.wanted
            state.current, state.next = state.next, loop.create_future()
            try:
                await self._refresh(state.model)
            except Exception as exc:  # noqa: BLE001 - logged and retried; never undoes a commit
                state.running = None
                _settle(state.current, False)
                failures += 1
                delay = self._delays[min(failures, len(self._delays)) - 1]
                log.warning("serving refresh of %s failed (%s: %s); retrying in %gs",
                            state.model, type(exc).__name__, exc, delay, exc_info=failures == 1)
                try:  # a new mark cuts the wait short
                    await asyncio.wait_for(state.wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            state.running = None
            if failures:
                log.info("serving refresh of %s succeeded after %d failed tries", state.model, failures)
                failures = 0
            _settle(state.current, True)
            if state.wanted <= start:  # nothing changed since this run began: done
                del self._models[key]
                _settle(state.next, True)
                return

    async def close(self) -> None:
        tasks = [s.task for s in self._models.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._models.clear()


class _ModelRefresh:
    def __init__(self, model: str) -> None:
        loop = asyncio.get_running_loop()
        self.model = model
        self.wanted = 0  # the latest mark for this model
        self.running: int | None = None  # the mark the run under way started from
        self.current: asyncio.Future[bool] = loop.create_future()  # the run under way
        self.next: asyncio.Future[bool] = loop.create_future()  # the run after it
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] = None  # type: ignore[assignment] - set right after


def _settle(future: asyncio.Future[bool] | None, ok: bool) -> None:
    if future is not None and not future.done():
        future.set_result(ok)


def _target(to: str) -> str:
    validate_stage(to)
    if to not in TARGETS:
        raise InvalidInput(f"cannot move a version to {to!r}: the targets are staging, production and archived")
    return to


def _reason(reason: Any) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON or "\x00" in reason:
        raise InvalidInput(f"reason must be text of at most {MAX_REASON} characters")
    return reason.strip()


def _check_movable(row: VersionRecord, to: str) -> None:
    ref = row.ref
    if row.status != "ready":
        raise Conflict(f"{ref} is {row.status}; only ready versions change stage")
    if row.purged_at:
        raise Conflict(f"{ref}'s files were removed by gc after retention; it cannot be deployed")
    if row.stage == to:
        raise Conflict(f"{ref} is already in {to}")


def _decision(rules: list[tuple[Rule, float | None]], command_results: list[dict[str, Any]], c: Candidate,
              target: str, force: bool) -> GateDecision:
    """The verdict of ``rules`` on fresh state: the non-command rules evaluated now, the command
    gates' results (run before the write) merged in rule order; allowed when passed or forced."""
    verdict = evaluate_now([(r, t) for r, t in rules if r.kind != "command"], c, target)
    verdict["rules"] = _in_rule_order(rules, verdict["rules"] + command_results)
    verdict["passed"] = all(r["status"] == "pass" for r in verdict["rules"])
    verdict["forced"] = force and not verdict["passed"]
    return GateDecision(allowed=verdict["passed"] or force, forced=verdict["forced"], verdict=verdict)


def _refusal(ref: str, target: str, verdict: dict[str, Any]) -> GateFailed:
    """A refused move's error: each failing rule and its verdict message; the verdict in details."""
    failed = [r for r in verdict.get("rules", []) if r["status"] != "pass"]
    return GateFailed(f"{ref} did not pass the {target} gates: "
                      + "; ".join(f"{r['rule']} → {r['message']}" for r in failed), {"verdict": verdict})


def _in_rule_order(rules: list[tuple[Rule, float | None]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {rule.text: i for i, (rule, _) in enumerate(rules)}
    return sorted(results, key=lambda r: order.get(r["rule"], len(order)))

