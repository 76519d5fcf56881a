"""Stage transitions, rollback, history, aliases, serving targets.

A transition is one write: it re-reads the version and the production version under the
write lock, builds the gate facts from that fresh state, asks the service's synchronous
``decide`` callable for a verdict, and commits either the refusal (a ``stage.refused``
event, nothing else) or the change: the archiving of the previous production version, the
stage_changes rows and the hash-chained events. Policy (which rules, what passes, who may
move what) stays in ``services/lifecycle.py``; the store only runs it on fresh state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec

from modelreg.shared.errors import NotFound
from modelreg.shared.names import Ref

from ..records import (AliasOutcome, FileRecord, GateDecision, GateFacts, GateRecord, RollbackPlan, ServingTarget,
                       StageChangeRecord, TransitionOutcome, VersionRecord)
from . import approvals, catalog, events
from .tx import Sql, Engine, WriteTx
from .gates import alias_rules_for, rules_for

SERVED_STAGES = ("production", "staging")

Decide = Callable[[GateFacts], GateDecision]
Authorize = Callable[[bool], None]  # given whether the alias is protected; raises to refuse the move
CheckRollback = Callable[[VersionRecord | None, VersionRecord], None]


# -- reads -----------------------------------------------------------------------------------------


def live_version(q: Sql, version_id: int) -> VersionRecord:
    """A version known by id, re-read; NotFound if it was deleted meanwhile."""
    rec = catalog.version_by_id(q, version_id)
    if rec.deleted_at is not None:
        raise NotFound(f"{rec.ref} was deleted", {"ref": rec.ref, "deleted": True})
    return rec


def _pairs(q: Sql, sql: str, version_id: int) -> dict[str, Any]:
    return {r["key"]: r["value"] for r in q.all(sql, (version_id,))}


def production_of(q: Sql, model_id: int) -> Any:
    return q.one("SELECT id, number, stage FROM versions WHERE model_id = ? AND stage = 'production'", (model_id,))


def gate_facts(q: Sql, rec: VersionRecord) -> GateFacts:
    vid = rec.id
    latest = "SELECT key, value FROM metric_latest WHERE version_id = ?"
    prod = production_of(q, rec.model_id)
    model = q.one("SELECT directions FROM models WHERE id = ?", (rec.model_id,))
    signature = q.one("SELECT status, signer FROM version_signatures WHERE version_id = ?", (vid,))
    return GateFacts(
        version=rec,
        metrics=_pairs(q, latest, vid),
        metric_sources=[r["source"] for r in q.all("SELECT DISTINCT source FROM metrics WHERE version_id = ?", (vid,))],
        params=_pairs(q, "SELECT key, value FROM params WHERE version_id = ?", vid),
        tags=_pairs(q, "SELECT key, value FROM version_tags WHERE version_id = ?", vid),
        relations=[r["relation"] for r in q.all("SELECT DISTINCT relation FROM lineage WHERE version_id = ?", (vid,))],
        directions=json.loads(model["directions"]),
        production_number=prod["number"] if prod is not None else None,
        production_metrics=_pairs(q, latest, prod["id"]) if prod is not None else {},
        signature_status=signature["status"] if signature is not None else None,
        signer=signature["signer"] if signature is not None else None,
    )


def alias_gate_facts(q: Sql, rec: VersionRecord, alias: str) -> GateFacts:
    """Gate facts for moving ``alias`` onto ``rec``: the version it would replace is the one the
    alias points at now (a rule's ``production`` means that version for an alias gate)."""
    facts = gate_facts(q, rec)
    held = q.one("SELECT version_id, v.number FROM aliases a JOIN versions v ON v.id = a.version_id "
                 "WHERE a.model_id = ? AND a.alias = ?", (rec.model_id, alias))
    latest = "SELECT key, value FROM metric_latest WHERE version_id = ?"
    return msgspec.structs.replace(
        facts, production_number=held["number"] if held is not None else None,
        production_metrics=_pairs(q, latest, held["version_id"]) if held is not None else {})


def version_files(q: Sql, version_id: int) -> list[FileRecord]:
    return [FileRecord(path=r["path"], sha256=r["sha256"], size=r["size"]) for r in q.all(
        "SELECT path, sha256, size FROM manifest WHERE version_id = ? ORDER BY path", (version_id,))]


def rollback_plan(q: Sql, name: str, to: Ref | None) -> RollbackPlan:
    mid = catalog.model_id(q, name)
    prod = production_of(q, mid)
    if prod is None:
        return RollbackPlan(current=None, target=None)
    current = catalog.version_by_id(q, prod["id"])
    if to is not None:
        target = catalog.resolve(q, to)
    else:
        prev = q.one(
            # A deleted version is never a rollback target, even before gc has purged it.
            "SELECT sc.version_id FROM stage_changes sc JOIN versions v ON v.id = sc.version_id "
            "WHERE sc.model_id = ? AND sc.to_stage = 'production' AND sc.version_id != ? AND v.deleted_at IS NULL "
            "ORDER BY sc.id DESC LIMIT 1", (mid, current.id))
        if prev is None:
            return RollbackPlan(current=current, target=None)
        target = catalog.version_by_id(q, prev["version_id"])
    return RollbackPlan(current=current, target=target, target_files=version_files(q, target.id))


def stage_change_record(row: Any) -> StageChangeRecord:
    return StageChangeRecord(
        id=row["id"], ts=row["ts"], number=row["number"], from_stage=row["from_stage"], to_stage=row["to_stage"],
        kind=row["kind"], actor=row["actor"], reason=row["reason"], forced=bool(row["forced"]),
        verdict=json.loads(row["verdict"]) if row["verdict"] else None, event_id=row["event_id"])


def history(q: Sql, name: str) -> list[StageChangeRecord]:
    """A model's stage changes, with the approvers each change's event names (issue 12)."""
    mid = catalog.model_id(q, name)
    rows = q.all(f"SELECT sc.*, {q.dialect.json_get('e.data', 'approvals')} AS approvals FROM stage_changes sc "
                 "LEFT JOIN events e ON e.id = sc.event_id WHERE sc.model_id = ? ORDER BY sc.id", (mid,))
    return [msgspec.structs.replace(stage_change_record(r), approvals=json.loads(r["approvals"]))
            if r["approvals"] else stage_change_record(r) for r in rows]


def aliases_of(q: Sql, model_id: int) -> dict[str, int]:
    rows = q.all("SELECT a.alias, v.number FROM aliases a JOIN versions v ON v.id = a.version_id "
                 "WHERE a.model_id = ? ORDER BY a.alias", (model_id,))
    return {r["alias"]: r["number"] for r in rows}


def alias_items(q: Sql, model_id: int) -> list[dict[str, Any]]:
    """Each alias with its version and whether it is protected."""
    rows = q.all("SELECT a.alias, v.number, a.protected FROM aliases a JOIN versions v ON v.id = a.version_id "
                 "WHERE a.model_id = ? ORDER BY a.alias", (model_id,))
    return [{"alias": r["alias"], "version": r["number"], "protected": bool(r["protected"])} for r in rows]


def alias_protected(q: Sql, model_id: int, alias: str) -> bool:
    row = q.one("SELECT protected FROM aliases WHERE model_id = ? AND alias = ?", (model_id, alias))
    return bool(row["protected"]) if row is not None else False


def serving_targets(q: Sql, model: str) -> list[ServingTarget]:
    """What HOME/serving/<model>/{production,staging} should point at, with the files to build them."""
    out = []
    for stage in SERVED_STAGES:
        row = q.one("SELECT v.id FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ? "
                    "AND v.stage = ? AND v.status = 'ready' ORDER BY v.number DESC LIMIT 1", (model, stage))
        if row is None:
            out.append(ServingTarget(stage=stage, model=model, version=None))
        else:
            rec = catalog.version_by_id(q, row["id"])
            out.append(ServingTarget(stage=stage, model=rec.model_name, version=rec, files=version_files(q, rec.id)))
    return out


def served_models(q: Sql) -> list[str]:
    return [r["name"] for r in q.all("SELECT DISTINCT m.name FROM versions v JOIN models m ON m.id = v.model_id "
                                     "WHERE v.stage IN ('production', 'staging')")]


# -- writes ----------------------------------------------------------------------------------------


def change_stage(tx: WriteTx, rec: VersionRecord, from_stage: str, to_stage: str, kind: str, actor: str,
                 reason: str, forced: bool, verdict: dict[str, Any] | None, approved_by: tuple[str, ...] = (),
                 request_id: int | None = None) -> None:
    """One stage change: the versions row, its stage.changed event (naming the identities that
    approved it, if any) and its stage_changes row; pending approval requests it makes moot
    close (``request_id``: the one whose approval makes this change)."""
    tx.execute("UPDATE versions SET stage = ?, stage_changed_at = ?, updated_at = ? WHERE id = ?",
               (to_stage, tx.now, tx.now, rec.id))
    data: dict[str, Any] = {"from": from_stage, "to": to_stage, "kind": kind, "reason": reason, "forced": forced,
                            "verdict": verdict}
    if approved_by:
        data["approvals"] = list(approved_by)
    event = events.append(tx, "stage.changed", actor, model=rec.model_name, version=rec.number, data=data)
    tx.execute(
        "INSERT INTO stage_changes (model_id, version_id, number, from_stage, to_stage, kind, actor, reason, forced, "
        "verdict, event_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rec.model_id, rec.id, rec.number, from_stage, to_stage, kind, actor, reason, int(forced),
         json.dumps(verdict) if verdict else None, event["id"], tx.now))
    approvals.supersede(tx, rec.id, to_stage, f"{kind} by {actor}", keep=request_id)


def record_refusal(tx: WriteTx, rec: VersionRecord, to: str, actor: str, reason: str,
                   verdict: dict[str, Any] | None) -> None:
    """A refused transition is part of the audit trail too: its event is all the write commits."""
    events.append(tx, "stage.refused", actor, model=rec.model_name, version=rec.number,
                  data={"from": rec.stage, "to": to, "reason": reason, "verdict": verdict})


def transition(tx: WriteTx, version_id: int, to: str, actor: str, reason: str, decide: Decide,
               requested_by: str = "", ttl: float = 0.0) -> TransitionOutcome:
    """Decide on fresh state, then commit the move, the refusal, or (held back only by an
    ``approvals`` gate) the approval request ``requested_by`` opens or joins."""
    rec = live_version(tx, version_id)
    decision = decide(gate_facts(tx, rec))  # may raise (e.g. Conflict): nothing is written
    if decision.approvals_needed:
        request = approvals.open_request(tx, rec, to, requested_by, actor, reason, decision.approvals_needed,
                                         decision.verdict, ttl)
        return TransitionOutcome(before=rec, decision=decision, request=request)
    if not decision.allowed:
        record_refusal(tx, rec, to, actor, reason, decision.verdict)
        return TransitionOutcome(before=rec, decision=decision)
    return apply_transition(tx, rec, to, actor, reason, decision)


def apply_transition(tx: WriteTx, rec: VersionRecord, to: str, actor: str, reason: str, decision: GateDecision,
                     approved_by: tuple[str, ...] = (), request_id: int | None = None) -> TransitionOutcome:
    """Commit an allowed move: the previous production version archived first, then the change."""
    archived = []
    if to == "production":
        prev = production_of(tx, rec.model_id)
        if prev is not None:
            prev_rec = catalog.version_by_id(tx, prev["id"])
            change_stage(tx, prev_rec, "production", "archived", "replaced", actor, f"replaced by v{rec.number}",
                         False, None)
            archived.append(prev_rec.number)
    change_stage(tx, rec, rec.stage, to, "transition", actor, reason, decision.forced, decision.verdict, approved_by,
                 request_id)
    # Read under the write lock: the answer describes this move, not a later one.
    view = catalog.version_detail(tx, catalog.version_by_id(tx, rec.id))
    return TransitionOutcome(before=rec, decision=decision, view=view, archived=archived)


def rollback(tx: WriteTx, current_id: int, target_id: int, actor: str, reason: str, check: CheckRollback) -> None:
    current = catalog.version_by_id(tx, current_id)
    prod = production_of(tx, current.model_id)
    now_prod = catalog.version_by_id(tx, prod["id"]) if prod is not None else None
    target = catalog.version_by_id(tx, target_id)
    check(now_prod, target)  # raises when either moved meanwhile
    change_stage(tx, current, "production", "archived", "rollback", actor, reason, False, None)
    change_stage(tx, target, target.stage, "production", "rollback", actor, reason, False, None)


def set_alias(tx: WriteTx, ref: Ref, alias: str, actor: str, decide: Decide | None = None,
              reason: str = "", authorize: Authorize | None = None, requested_by: str = "",
              ttl: float = 0.0) -> AliasOutcome:
    """Point ``alias`` at ``ref``; ``authorize`` first sees whether the alias is protected (and may
    refuse); with ``decide`` (the alias has gates), only if it allows the move on the state this
    write sees, else the refusal (an ``alias.refused`` event) or, when only approvals are
    missing, the approval request ``requested_by`` opens is all it commits."""
    rec = catalog.resolve(tx, ref)
    if authorize is not None:
        authorize(alias_protected(tx, rec.model_id, alias))
    decision = decide(alias_gate_facts(tx, rec, alias)) if decide is not None else None
    if decision is not None and decision.approvals_needed:
        request = approvals.open_request(tx, rec, f"@{alias}", requested_by, actor, reason,
                                         decision.approvals_needed, decision.verdict, ttl)
        return AliasOutcome(before=rec, decision=decision, request=request)
    if decision is not None and not decision.allowed:
        held = tx.one("SELECT v.number FROM aliases a JOIN versions v ON v.id = a.version_id "
                      "WHERE a.model_id = ? AND a.alias = ?", (rec.model_id, alias))
        events.append(tx, "alias.refused", actor, model=rec.model_name, version=rec.number, data={
            "alias": alias, "from": held["number"] if held is not None else None, "to": rec.number,
            "reason": reason, "verdict": decision.verdict})
        return AliasOutcome(before=rec, decision=decision)
    return point_alias(tx, rec, alias, actor, decision, reason)


def point_alias(tx: WriteTx, rec: VersionRecord, alias: str, actor: str, decision: GateDecision | None,
                reason: str = "", approved_by: tuple[str, ...] = ()) -> AliasOutcome:
    """Commit an allowed alias move (its ``alias.set`` event keeps the verdict and the approvers)."""
    tx.execute("INSERT INTO aliases (model_id, alias, version_id, created_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id, "
               "created_at = excluded.created_at", (rec.model_id, alias, rec.id, tx.now))
    data: dict[str, Any] = {"alias": alias}
    if decision is not None:  # a gated move keeps its verdict, and an override its reason
        data.update(verdict=decision.verdict, forced=decision.forced, reason=reason)
    if approved_by:
        data["approvals"] = list(approved_by)
    events.append(tx, "alias.set", actor, model=rec.model_name, version=rec.number, data=data)
    return AliasOutcome(before=rec, decision=decision, aliases=aliases_of(tx, rec.model_id))


def remove_alias(tx: WriteTx, name: str, alias: str, actor: str, authorize: Authorize | None = None) -> dict[str, int]:
    mid = catalog.model_id(tx, name)
    if authorize is not None:
        authorize(alias_protected(tx, mid, alias))
    if tx.execute("DELETE FROM aliases WHERE model_id = ? AND alias = ?", (mid, alias)).rowcount == 0:
        raise NotFound(f"{name} has no alias {alias!r}")
    events.append(tx, "alias.removed", actor, model=name, data={"alias": alias})
    return aliases_of(tx, mid)


def protect_alias(tx: WriteTx, name: str, alias: str, protected: bool, actor: str) -> list[dict[str, Any]]:
    """Mark an existing alias protected (or not): ``alias.protected`` / ``alias.unprotected``."""
    mid = catalog.model_id(tx, name)
    row = tx.one("SELECT a.protected, v.number FROM aliases a JOIN versions v ON v.id = a.version_id "
                 "WHERE a.model_id = ? AND a.alias = ?", (mid, alias))
    if row is None:
        raise NotFound(f"{name} has no alias {alias!r}; set it first (modelreg alias set {name} {alias} VERSION)",
                       {"alias": alias})
    if bool(row["protected"]) != protected:
        tx.execute("UPDATE aliases SET protected = ? WHERE model_id = ? AND alias = ?", (int(protected), mid, alias))
        stored = tx.one("SELECT name FROM models WHERE id = ?", (mid,))["name"]
        events.append(tx, "alias.protected" if protected else "alias.unprotected", actor, model=stored,
                      version=row["number"], data={"alias": alias})
    return alias_items(tx, mid)


class StageStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def candidate(self, ref: Ref | str, stage: str) -> tuple[GateFacts, list[GateRecord]]:
        """A version's gate facts and the rules guarding ``stage`` for its model (one read)."""
        def read(q: Sql) -> tuple[GateFacts, list[GateRecord]]:
            rec = catalog.resolve(q, ref)
            return gate_facts(q, rec), rules_for(q, rec.model_id, stage)
        return await self.engine.read(read)

    async def facts(self, version_id: int) -> GateFacts:
        """A version's gate facts, read again (for command gates, outside any transaction)."""
        return await self.engine.read(lambda q: gate_facts(q, live_version(q, version_id)))

    async def transition(self, version_id: int, to: str, actor: str, reason: str, decide: Decide,
                         requested_by: str = "", ttl: float = 0.0) -> TransitionOutcome:
        """Move a version to ``to`` if ``decide`` allows it on fresh state, else record the refusal
        or open the approval request (one write; see ``transition``)."""
        return await self.engine.write(lambda tx: transition(tx, version_id, to, actor, reason, decide,
                                                             requested_by, ttl))

    async def rollback_plan(self, name: str, to: Ref | None = None) -> RollbackPlan:
        """The production version now and the one a rollback would restore (``to``, or the last other one)."""
        return await self.engine.read(lambda q: rollback_plan(q, name, to))

    async def rollback(self, current_id: int, target_id: int, actor: str, reason: str, check: CheckRollback) -> None:
        """Swap production back to ``target_id`` if ``check`` still agrees on fresh state (one write)."""
        await self.engine.write(lambda tx: rollback(tx, current_id, target_id, actor, reason, check))

    async def history(self, name: str) -> list[StageChangeRecord]:
        return await self.engine.read(lambda q: history(q, name))

    async def aliases(self, name: str) -> dict[str, int]:
        return await self.engine.read(lambda q: aliases_of(q, catalog.model_id(q, name)))

    async def alias_items(self, name: str) -> list[dict[str, Any]]:
        return await self.engine.read(lambda q: alias_items(q, catalog.model_id(q, name)))

    async def alias_candidate(self, ref: Ref, alias: str) -> tuple[GateFacts, list[GateRecord], bool]:
        """A version's gate facts for moving ``alias`` onto it, the rules guarding the alias and
        whether it is protected (one read)."""
        def read(q: Sql) -> tuple[GateFacts, list[GateRecord], bool]:
            rec = catalog.resolve(q, ref)
            return (alias_gate_facts(q, rec, alias), alias_rules_for(q, rec.model_id, alias),
                    alias_protected(q, rec.model_id, alias))
        return await self.engine.read(read)

    async def set_alias(self, ref: Ref, alias: str, actor: str, decide: Decide | None = None, reason: str = "",
                        authorize: Authorize | None = None, requested_by: str = "", ttl: float = 0.0) -> AliasOutcome:
        """Point ``alias`` at the version ``ref`` names if ``authorize`` and ``decide`` (when given)
        allow it on fresh state, else record the refusal or open the approval request (one
        write); the outcome holds the model's aliases after it."""
        return await self.engine.write(lambda tx: set_alias(tx, ref, alias, actor, decide, reason, authorize,
                                                            requested_by, ttl))

    async def remove_alias(self, name: str, alias: str, actor: str, authorize: Authorize | None = None) -> dict[str, int]:
        return await self.engine.write(lambda tx: remove_alias(tx, name, alias, actor, authorize))

    async def protect_alias(self, name: str, alias: str, protected: bool, actor: str) -> list[dict[str, Any]]:
        return await self.engine.write(lambda tx: protect_alias(tx, name, alias, protected, actor))

    async def files(self, version_id: int) -> list[FileRecord]:
        return await self.engine.read(lambda q: version_files(q, version_id))

    async def serving_targets(self, model: str) -> list[ServingTarget]:
        return await self.engine.read(lambda q: serving_targets(q, model))

    async def served_models(self) -> list[str]:
        return await self.engine.read(served_models)
