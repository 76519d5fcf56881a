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

Who acts (issue 12): every move is made as an ``Identity``, and the scope checks live here,
once for the v1 and the MLflow API: stage changes and rollback need ``promote`` on the
model, an alias move ``write`` (``promote`` when the alias is protected). ``by`` rules see
the identity's name; a move that only an ``approvals`` rule holds back opens an approval
request in the same write (services/approvals.py takes the votes).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict, GateFailed, IntegrityError, InvalidInput
from modelreg.shared.names import parse_ref, validate_alias, validate_name, validate_stage
from modelreg.shared.timefmt import iso, parse_time

from ..artifacts import serving
from ..artifacts import remote
from ..artifacts.blobs import BlobStore
from ..store import Store
from ..store.records import FileRecord, GateDecision, GateFacts, VersionRecord
from .gates import WHO_RULES, Candidate, Rule, candidate, evaluate, evaluate_now, rules_of
from .identity import DAEMON, Identity

TARGETS = ("staging", "production", "archived")
MAX_REASON = 2000
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # serving refresh retries; the last repeats
DEFAULT_APPROVAL_TTL = 7 * 86400.0  # an approval request nobody decides on closes as expired after a week

log = logging.getLogger("modelreg.lifecycle")


class Lifecycle:
    def __init__(self, store: Store, blobs: BlobStore, pool: Executor, home: Path, url: str = "",
                 approval_ttl: float = DEFAULT_APPROVAL_TTL) -> None:
        self.store, self.blobs, self.pool, self.home, self.url = store, blobs, pool, home, url
        self.approval_ttl = approval_ttl  # MODELREG_APPROVAL_TTL: how long an approval request stays open
        self.serving = ServingRefresher(self._refresh_serving_now)
        store.on_commit.append(self.on_commit)  # committed stage changes refresh the serving links

    # -- gates ---------------------------------------------------------------------------------

    def _candidate(self, facts: GateFacts, baseline: str = "production", identity: str | None = None) -> Candidate:
        v = facts.version
        return candidate(facts, artifacts=lambda: self._materialise_str(v.id, v.model_name, v.number),
                         env={"MODELREG_URL": self.url}, baseline=baseline, identity=identity)

    async def _plan(self, facts: GateFacts, rules: list[tuple[Rule, float | None]], target: str, identity: str | None,
                    force: bool = False, run_commands: bool = True) -> GatePlan:
        """The rules guarding a move, with the command gates run now (they take time and never
        hold the write lock); the other rules are evaluated by ``GatePlan.decide`` inside it."""
        baseline = target if target.startswith("@") else "production"
        command_rules = [(r, t) for r, t in rules if r.kind == "command"]
        results: list[dict[str, Any]] | None = []
        if command_rules and run_commands:
            results = (await evaluate(command_rules, self._candidate(facts, baseline, identity), target))["rules"]
        elif command_rules:
            results = None
        return GatePlan(rules, results, target, baseline, identity, force)

    async def check(self, ref: str, to: str, who: Identity) -> dict[str, Any]:
        """Dry run: the verdict a transition to ``to`` (or moving alias ``@ALIAS``) by ``who`` would get now."""
        parsed = parse_ref(ref)
        who.require("read", parsed.model, doing="a gate dry run")
        if isinstance(to, str) and to.startswith("@"):
            facts, gates, _ = await self.store.stages.alias_candidate(parsed, validate_alias(to[1:]))
            return await evaluate(rules_of(gates), self._candidate(facts, to, gate_identity(who)), to)
        to = _target(to)
        facts, gates = await self.store.stages.candidate(parsed, to)
        rules = rules_of(gates) if to in ("staging", "production") else []
        return await evaluate(rules, self._candidate(facts, identity=gate_identity(who)), to)

    # -- transitions -----------------------------------------------------------------------------

    async def transition(self, ref: str, to: str, who: Identity, reason: str = "",
                         force: bool = False) -> dict[str, Any]:
        """Move a version through its gates as ``who`` (``promote`` on the model). Held back only by
        an ``approvals`` gate, the move opens an approval request instead: the answer is then
        ``{"request", "verdict"}`` (the API's 202)."""
        to = _target(to)
        reason = _reason(reason)
        if force and not reason:
            raise InvalidInput("--force needs a --reason: overrides are audited")
        if to == "archived" and not reason:
            raise InvalidInput("archiving needs a --reason")
        parsed = parse_ref(ref)
        who.require("promote", parsed.model, doing=f"moving a version to {to}")
        gated = to in ("staging", "production")
        facts, gates = await self.store.stages.candidate(parsed, to)
        _check_movable(facts.version, to)
        plan = await self._plan(facts, rules_of(gates) if gated else [], to, gate_identity(who), force)

        def decide(fresh: GateFacts) -> GateDecision:
            """On the state the write sees (synchronous: runs on the writer's thread)."""
            _check_movable(fresh.version, to)
            decision = plan.decide(fresh)
            return decision if gated else GateDecision(allowed=decision.allowed, forced=decision.forced, verdict=None)

        outcome = await self.store.stages.transition(facts.version.id, to, who.actor, reason, decide,
                                                     who.name, self.approval_ttl)
        row = outcome.before
        if outcome.request is not None:
            return {"request": outcome.request, "verdict": outcome.decision.verdict}
        if not outcome.decision.allowed:
            raise _refusal(row.ref, to, outcome.decision.verdict or {}, force)
        await self._serving_followed(row.model_name)
        return {"version": outcome.view, "verdict": outcome.decision.verdict if gated else None,
                "archived": outcome.archived}

    async def rollback(self, name: str, who: Identity, reason: str, to: int | None = None) -> dict[str, Any]:
        reason = _reason(reason)
        if not reason:
            raise InvalidInput("a rollback needs a --reason")
        validate_name(name)
        who.require("promote", name, doing="a rollback")
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

        await self.store.stages.rollback(current.id, target.id, who.actor, reason, check)
        await self._serving_followed(current.model_name)
        return {"model": current.model_name, "from": current.number, "to": target.number, "reason": reason}

    # -- approval requests (services/approvals.py runs the votes) --------------------------------

    async def request_decider(self, request: dict[str, Any],
                              run_commands: bool) -> Callable[[GateFacts, tuple[str, ...]], GateDecision]:
        """What a vote's write asks: the request's gates read afresh and evaluated as its
        requester (``by`` rules look at who asked, not at who approved), with the approvals
        so far; command gates run now only when ``run_commands``."""
        ref, target = parse_ref(f"{request['model']}@{request['version']}"), request["target"]
        if target.startswith("@"):
            facts, gates, _ = await self.store.stages.alias_candidate(ref, target[1:])
        else:
            facts, gates = await self.store.stages.candidate(ref, target)
        requester = None if request["requested_by"] == DAEMON.name else request["requested_by"]
        plan = await self._plan(facts, rules_of(gates), target, requester, run_commands=run_commands)

        def decide(fresh: GateFacts, approvals: tuple[str, ...]) -> GateDecision:
            if not target.startswith("@"):
                _check_movable(fresh.version, target)
            return plan.decide(fresh, approvals)
        return decide

    async def approved(self, request: dict[str, Any]) -> None:
        """After a vote's write committed a move: wait for the serving links, as a transition does."""
        if not request["target"].startswith("@"):
            await self._serving_followed(request["model"])

    async def _verify_blobs(self, row: VersionRecord, files: list[FileRecord]) -> None:
        """Re-hash a rollback target's files before it goes back into production."""
        loop = asyncio.get_running_loop()
        await remote.fetch(self.blobs, [f.sha256 for f in files])  # its serving folder is built from local copies
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
        if not await loop.run_in_executor(self.pool, serving.version_dir(self.home, model, number).is_dir):
            await remote.fetch(self.blobs, [sha for _, sha in pairs])  # registered through another daemon
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
                  "passed": c.verdict["passed"] if c.verdict else None, "event_id": c.event_id,
                  "approvals": c.approvals} for c in changes]
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
        """``aliases``: alias → version number; ``items``: each with whether it is protected."""
        items = await self.store.stages.alias_items(validate_name(name))
        return {"model": name, "aliases": {a["alias"]: a["version"] for a in items}, "items": items}

    async def set_alias(self, name: str, alias: str, number: int, who: Identity, reason: str | None = "",
                        force: bool = False) -> dict[str, Any]:
        """Point NAME@ALIAS at ``number`` through the alias's gates, as a transition goes through a
        stage's: command gates first, the other rules inside the write on fresh state; a refusal
        is audited (``alias.refused``) and raised as GateFailed, unless forced with a reason.
        Moving an alias needs ``write`` on the model, a protected one ``promote``; held back only
        by an ``approvals`` gate, the move opens an approval request (``{"request", "verdict"}``)."""
        validate_alias(alias)
        reason = _reason(reason)
        if force and not reason:
            raise InvalidInput("--force needs a --reason: overrides are audited")
        ref = parse_ref(f"{validate_name(name)}@{int(number)}")  # the caller's number, checked as any ref is
        who.require("write", name, doing="moving an alias")
        authorize = _alias_authority(who, name, alias, "moving")
        facts, gates, protected = await self.store.stages.alias_candidate(ref, alias)
        authorize(protected)  # before any command gate runs; the write checks again on fresh state
        if not gates:
            outcome = await self.store.stages.set_alias(ref, alias, who.actor, authorize=authorize)
            return {"model": name, "aliases": outcome.aliases, "verdict": None}
        target = f"@{alias}"
        plan = await self._plan(facts, rules_of(gates), target, gate_identity(who), force)
        outcome = await self.store.stages.set_alias(ref, alias, who.actor, plan.decide, reason, authorize,
                                                    who.name, self.approval_ttl)
        if outcome.request is not None:
            return {"request": outcome.request, "verdict": outcome.decision.verdict if outcome.decision else None}
        if outcome.decision is not None and not outcome.decision.allowed:
            raise _refusal(outcome.before.ref, target, outcome.decision.verdict or {}, force)
        return {"model": name, "aliases": outcome.aliases, "verdict": outcome.decision.verdict if outcome.decision else None}

    async def remove_alias(self, name: str, alias: str, who: Identity) -> dict[str, Any]:
        """Remove NAME@ALIAS (``write`` on the model; a protected alias ``promote``)."""
        validate_name(name)
        who.require("write", name, doing="removing an alias")
        authorize = _alias_authority(who, name, alias, "removing")
        return {"model": name, "aliases": await self.store.stages.remove_alias(name, alias, who.actor, authorize)}

    async def protect_alias(self, name: str, alias: str, protected: bool, who: Identity) -> dict[str, Any]:
        """Mark an existing alias protected, or not (``promote`` on the model): a protected alias
        moves or goes only by identities with ``promote``, through its gates."""
        validate_name(name)
        validate_alias(alias)
        who.require("promote", name, doing=("protecting" if protected else "unprotecting") + " an alias")
        items = await self.store.stages.protect_alias(name, alias, protected, who.actor)
        return {"model": name, "aliases": {a["alias"]: a["version"] for a in items}, "items": items}


@dataclass(frozen=True)
class GatePlan:
    """A move's rules, ready to be decided on fresh state inside the write: the command gates'
    results (None: there are command gates and they have not run) and who the gates see."""

    rules: list[tuple[Rule, float | None]]
    command_results: list[dict[str, Any]] | None
    target: str
    baseline: str          # production, or @ALIAS for an alias gate
    identity: str | None   # who the ``by`` rules see; None: the daemon itself
    force: bool = False

    def decide(self, fresh: GateFacts, approvals: tuple[str, ...] = ()) -> GateDecision:
        """The decision on the state a write sees (synchronous: runs on the writer's thread)."""
        c = candidate(fresh, baseline=self.baseline, identity=self.identity, approvals=approvals)
        decision = _decision(self.rules, self.command_results or [], c, self.target, self.force)
        if self.command_results is None and decision.allowed:
            raise CommandsNotRun(self.target)  # rolls the write back: run them, then try again
        return decision


class CommandsNotRun(Exception):
    """A vote would complete a request whose command gates the caller did not run (a race
    with another vote): the write is rolled back and retried with the command gates run."""


def gate_identity(who: Identity) -> str | None:
    """The name ``by`` rules compare: the daemon acting on its own rules is no identity they name."""
    return None if who.token_id is None and who.name == DAEMON.name else who.name


def _alias_authority(who: Identity, name: str, alias: str, doing: str) -> Callable[[bool], None]:
    """The check a protected alias adds, run by the write on the alias's state then."""
    def authorize(protected: bool) -> None:
        if protected:
            who.require("promote", name, doing=f"{doing} protected alias {name}@{alias}")
    return authorize


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
    gates' results (run before the write) merged in rule order. Allowed when passed, or forced
    past every failed rule except the ones about who acts (``WHO_RULES``: --force never stands
    in for them). Failing only on ``approvals`` rules, it asks for an approval request instead."""
    verdict = evaluate_now([(r, t) for r, t in rules if r.kind != "command"], c, target)
    verdict["rules"] = _in_rule_order(rules, verdict["rules"] + command_results)
    verdict["passed"] = all(r["status"] == "pass" for r in verdict["rules"])
    failed = [r for r in verdict["rules"] if r["status"] != "pass"]
    if failed and all(r["kind"] == "approvals" for r in failed):
        verdict["forced"] = False
        needed = max(int(rule.value) for rule, _ in rules if rule.kind == "approvals"
                     and rule.text in {r["rule"] for r in failed})
        return GateDecision(allowed=False, forced=False, verdict=verdict, approvals_needed=needed)
    verdict["forced"] = force and bool(failed) and not any(r["kind"] in WHO_RULES for r in failed)
    return GateDecision(allowed=verdict["passed"] or verdict["forced"], forced=verdict["forced"], verdict=verdict)


def _refusal(ref: str, target: str, verdict: dict[str, Any], force: bool = False) -> GateFailed:
    """A refused move's error: each failing rule and its verdict message, what --force cannot
    override and whether approval would be needed too; the verdict in details."""
    failed = [r for r in verdict.get("rules", []) if r["status"] != "pass"]
    message = (f"{ref} did not pass the {target} gates: "
               + "; ".join(f"{r['rule']} → {r['message']}" for r in failed))
    who = [r["rule"] for r in failed if r["kind"] in WHO_RULES]
    if force and who:
        message += f". --force does not override who may make this move ({', '.join(who)})"
    if any(r["kind"] == "approvals" for r in failed):
        message += ". Once the other rules pass, this move will need approval: it opens an approval request"
    return GateFailed(message, {"verdict": verdict})


def _in_rule_order(rules: list[tuple[Rule, float | None]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {rule.text: i for i, (rule, _) in enumerate(rules)}
    return sorted(results, key=lambda r: order.get(r["rule"], len(order)))

