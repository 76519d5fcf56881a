"""Stage transitions, gates, rollback, history and aliases (PRODUCT.md §4).

A transition runs its command gates first (they take time and never hold the write lock),
then, inside one write transaction, re-reads the version and the production version,
evaluates the other rules on that fresh state, and either refuses or commits: the stage
change, the archiving of the previous production version, the stage_changes rows and the
hash-chained events. The serving symlinks follow after commit.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from modelreg.shared.errors import Conflict, GateFailed, IntegrityError, InvalidInput, NotFound
from modelreg.shared.names import validate_alias, validate_name, validate_stage
from modelreg.shared.timefmt import iso, parse_time

from . import catalog, events, serving
from .blobs import BlobStore
from .db import Database, Transaction
from .gates import Candidate, Rule, evaluate, parse_rule

TARGETS = ("staging", "production", "archived")
MAX_REASON = 2000


class Lifecycle:
    def __init__(self, db: Database, blobs: BlobStore, pool: Executor, home: Path, url: str = "") -> None:
        self.db, self.blobs, self.pool, self.home, self.url = db, blobs, pool, home, url
        self._serving_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # -- gates ---------------------------------------------------------------------------------

    async def rules_for(self, src: Database | Transaction, model_id: int, stage: str) -> list[tuple[Rule, float | None]]:
        rows = await src.all("SELECT rule, timeout FROM gates WHERE stage = ? AND (model_id IS NULL OR model_id = ?) "
                             "ORDER BY model_id IS NOT NULL, id", (stage, model_id))
        return [(parse_rule(r["rule"]), r["timeout"]) for r in rows]

    async def candidate(self, src: Database | Transaction, row: Any) -> Candidate:
        vid = row["id"]
        metrics = {r["key"]: r["value"] for r in await src.all(
            "SELECT key, value FROM metric_latest WHERE version_id = ?", (vid,))}
        sources = {r["source"] for r in await src.all("SELECT DISTINCT source FROM metrics WHERE version_id = ?", (vid,))}
        edges = {r["relation"] for r in await src.all("SELECT DISTINCT relation FROM lineage WHERE version_id = ?", (vid,))}
        model = await src.one("SELECT directions FROM models WHERE id = ?", (row["model_id"],))
        prod = await src.one("SELECT id, number FROM versions WHERE model_id = ? AND stage = 'production'",
                             (row["model_id"],))
        production = None
        if prod is not None:
            production = {"number": prod["number"], "metrics": {r["key"]: r["value"] for r in await src.all(
                "SELECT key, value FROM metric_latest WHERE version_id = ?", (prod["id"],))}}
        name, number = row["model_name"], row["number"]
        return Candidate(
            model=name, number=number, stage=row["stage"], metrics=metrics, metric_sources=sources,
            params={r["key"]: r["value"] for r in await src.all("SELECT key, value FROM params WHERE version_id = ?", (vid,))},
            tags={r["key"]: r["value"] for r in await src.all("SELECT key, value FROM version_tags WHERE version_id = ?", (vid,))},
            has_dataset=bool(edges & {"trained_on", "evaluated_on"}), has_run="produced_by" in edges,
            has_parent="derived_from" in edges, description=row["description"],
            staged_since=row["stage_changed_at"] if row["stage"] == "staging" else None,
            directions=json.loads(model["directions"]), production=production,
            artifacts=lambda: self._materialise_str(vid, name, number), env={"MODELREG_URL": self.url})

    async def check(self, ref: str, to: str) -> dict[str, Any]:
        """Dry run: the verdict a transition to ``to`` would get now."""
        to = _target(to)
        row = await catalog.resolve(self.db, ref)
        rules = await self.rules_for(self.db, row["model_id"], to) if to in ("staging", "production") else []
        return await evaluate(rules, await self.candidate(self.db, row), to)

    # -- transitions -----------------------------------------------------------------------------

    async def transition(self, ref: str, to: str, actor: str, reason: str = "", force: bool = False) -> dict[str, Any]:
        to = _target(to)
        reason = _reason(reason)
        if force and not reason:
            raise InvalidInput("--force needs a --reason: overrides are audited")
        if to == "archived" and not reason:
            raise InvalidInput("archiving needs a --reason")
        row = await catalog.resolve(self.db, ref)
        _check_movable(row, to)
        gated = to in ("staging", "production")
        rules = await self.rules_for(self.db, row["model_id"], to) if gated else []
        # Command gates run before the write lock is taken; the rest is evaluated inside it.
        command_rules = [(r, t) for r, t in rules if r.kind == "command"]
        command_results = []
        if command_rules:
            command_results = (await evaluate(command_rules, await self.candidate(self.db, row), to))["rules"]
        refused: dict[str, Any] | None = None
        async with self.db.transaction() as tx:
            row = await catalog.resolve(tx, f"{row['model_name']}@{row['number']}")
            _check_movable(row, to)
            pure = [(r, t) for r, t in rules if r.kind != "command"]
            verdict = await evaluate(pure, await self.candidate(tx, row), to)
            verdict["rules"] = _in_rule_order(rules, verdict["rules"] + command_results)
            verdict["passed"] = all(r["status"] == "pass" for r in verdict["rules"])
            verdict["forced"] = force and not verdict["passed"]
            if not verdict["passed"] and not force:
                # The refusal is part of the audit trail too.
                await events.append(tx, "stage.refused", actor, model=row["model_name"], version=row["number"],
                                    data={"from": row["stage"], "to": to, "reason": reason, "verdict": verdict})
                refused = verdict
            else:
                archived = []
                if to == "production":
                    prev = await tx.one("SELECT id, number, stage FROM versions WHERE model_id = ? AND stage = 'production'",
                                        (row["model_id"],))
                    if prev is not None:
                        await self._change(tx, row["model_id"], row["model_name"], prev["id"], prev["number"], "production",
                                           "archived", "replaced", actor, f"replaced by v{row['number']}", False, None)
                        archived.append(prev["number"])
                await self._change(tx, row["model_id"], row["model_name"], row["id"], row["number"], row["stage"], to,
                                   "transition", actor, reason, verdict["forced"], verdict if gated else None)
                # Read under the write lock: the answer describes this move, not a later one.
                view = await catalog.version_detail(tx, await catalog.resolve(tx, f"{row['model_name']}@{row['number']}"))
        if refused is not None:
            failed = [r for r in refused["rules"] if r["status"] != "pass"]
            raise GateFailed(f"{row['model_name']}@{row['number']} did not pass the {to} gates: "
                             + "; ".join(f"{r['rule']} → {r['message']}" for r in failed), {"verdict": refused})
        await self.refresh_serving(row["model_name"])
        return {"version": view, "verdict": verdict if gated else None, "archived": archived}

    async def rollback(self, name: str, actor: str, reason: str, to: int | None = None) -> dict[str, Any]:
        reason = _reason(reason)
        if not reason:
            raise InvalidInput("a rollback needs a --reason")
        mid = await catalog.model_id(self.db, validate_name(name))
        current = await self.db.one("SELECT v.*, m.name AS model_name FROM versions v JOIN models m ON m.id = v.model_id "
                                    "WHERE v.model_id = ? AND v.stage = 'production'", (mid,))
        if current is None:
            raise Conflict(f"{name} has no production version to roll back from")
        if to is not None:
            target = await catalog.resolve(self.db, f"{name}@{int(to)}")
        else:
            prev = await self.db.one(
                # A deleted version is never a rollback target, even before gc has purged it.
                "SELECT sc.version_id FROM stage_changes sc JOIN versions v ON v.id = sc.version_id "
                "WHERE sc.model_id = ? AND sc.to_stage = 'production' AND sc.version_id != ? AND v.deleted_at IS NULL "
                "ORDER BY sc.id DESC LIMIT 1", (mid, current["id"]))
            if prev is None:
                raise Conflict(f"{name} has had no other production version; name one with --to N")
            target = await self.db.one("SELECT v.*, m.name AS model_name FROM versions v JOIN models m "
                                       "ON m.id = v.model_id WHERE v.id = ?", (prev["version_id"],))
        if target["id"] == current["id"]:
            raise Conflict(f"{name}@{target['number']} is already in production")
        _check_movable(target, "production")
        await self._verify_blobs(target)
        async with self.db.transaction() as tx:
            now_prod = await tx.one("SELECT id FROM versions WHERE model_id = ? AND stage = 'production'", (mid,))
            if now_prod is None or now_prod["id"] != current["id"]:
                raise Conflict(f"{name}'s production version changed during the rollback; look again and retry")
            fresh = await tx.one("SELECT stage, status, purged_at, deleted_at FROM versions WHERE id = ?", (target["id"],))
            if fresh["status"] != "ready" or fresh["purged_at"] or fresh["deleted_at"]:
                raise Conflict(f"{name}@{target['number']} can no longer be deployed")
            await self._change(tx, mid, name, current["id"], current["number"], "production", "archived", "rollback",
                               actor, reason, False, None)
            await self._change(tx, mid, name, target["id"], target["number"], fresh["stage"], "production", "rollback",
                               actor, reason, False, None)
        await self.refresh_serving(current["model_name"])
        return {"model": current["model_name"], "from": current["number"], "to": target["number"], "reason": reason}

    async def _change(self, tx: Transaction, model_id: int, model: str, version_id: int, number: int, from_stage: str,
                      to_stage: str, kind: str, actor: str, reason: str, forced: bool, verdict: dict | None) -> None:
        await tx.execute("UPDATE versions SET stage = ?, stage_changed_at = ?, updated_at = ? WHERE id = ?",
                         (to_stage, tx.now, tx.now, version_id))
        event = await events.append(tx, "stage.changed", actor, model=model, version=number, data={
            "from": from_stage, "to": to_stage, "kind": kind, "reason": reason, "forced": forced, "verdict": verdict})
        await tx.execute(
            "INSERT INTO stage_changes (model_id, version_id, number, from_stage, to_stage, kind, actor, reason, forced, "
            "verdict, event_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (model_id, version_id, number, from_stage, to_stage, kind, actor, reason, int(forced),
             json.dumps(verdict) if verdict else None, event["id"], tx.now))

    async def _verify_blobs(self, row: Any) -> None:
        """Re-hash a rollback target's files before it goes back into production."""
        files = await self.db.all("SELECT path, sha256 FROM manifest WHERE version_id = ?", (row["id"],))
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(self.pool, self.blobs.verify, f["sha256"]) for f in files))
        bad = [f"{f['path']} ({status})" for f, status in zip(files, results) if status != "ok"]
        if bad:
            raise IntegrityError(f"{row['model_name']}@{row['number']} cannot be restored, its files are damaged: "
                                 + ", ".join(bad), {"files": bad})

    # -- serving handoff -------------------------------------------------------------------------

    async def _materialise_str(self, version_id: int, model: str, number: int) -> str:
        return str(await self.materialise(version_id, model, number))

    async def materialise(self, version_id: int, model: str, number: int) -> Path:
        files = [(r["path"], r["sha256"]) for r in await self.db.all(
            "SELECT path, sha256 FROM manifest WHERE version_id = ?", (version_id,))]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, serving.materialise, self.home, self.blobs, model, number, files)

    async def refresh_serving(self, model: str) -> None:
        """Point HOME/serving/<model>/{production,staging} at what the database says now."""
        async with self._serving_locks[model.lower()]:
            loop = asyncio.get_running_loop()
            for stage in ("production", "staging"):
                row = await self.db.one(
                    "SELECT v.id, v.number, m.name FROM versions v JOIN models m ON m.id = v.model_id "
                    "WHERE m.name = ? AND v.stage = ? AND v.status = 'ready' ORDER BY v.number DESC LIMIT 1", (model, stage))
                target = await self.materialise(row["id"], row["name"], row["number"]) if row else None
                await loop.run_in_executor(self.pool, serving.point_serving, self.home,
                                           row["name"] if row else model, stage, target)

    async def refresh_all_serving(self) -> None:
        for r in await self.db.all("SELECT DISTINCT m.name FROM versions v JOIN models m ON m.id = v.model_id "
                                   "WHERE v.stage IN ('production', 'staging')"):
            await self.refresh_serving(r["name"])

    # -- history and aliases ------------------------------------------------------------------------

    async def history(self, name: str, at: str | None = None, limit: int = 200) -> dict[str, Any]:
        mid = await catalog.model_id(self.db, validate_name(name))
        rows = await self.db.all("SELECT * FROM stage_changes WHERE model_id = ? ORDER BY id", (mid,))
        items = [{"id": r["id"], "ts": iso(r["ts"]), "version": r["number"], "from": r["from_stage"], "to": r["to_stage"],
                  "kind": r["kind"], "actor": r["actor"], "reason": r["reason"], "forced": bool(r["forced"]),
                  "passed": json.loads(r["verdict"])["passed"] if r["verdict"] else None,
                  "event_id": r["event_id"]} for r in rows]
        out: dict[str, Any] = {"model": name, "items": items[-limit:], "total": len(items)}
        if at is not None:
            when = parse_time(at)
            try:
                shown = iso(when)
            except (OverflowError, OSError, ValueError):
                raise InvalidInput(f"time {at[:50]!r} is out of range") from None
            stages: dict[int, str] = {}
            for r in rows:
                if r["ts"] <= when:
                    stages[r["number"]] = r["to_stage"]
            out["at"] = {"time": shown,
                         "production": next((n for n, s in stages.items() if s == "production"), None),
                         "staging": sorted(n for n, s in stages.items() if s == "staging")}
        return out

    async def aliases(self, name: str) -> dict[str, Any]:
        mid = await catalog.model_id(self.db, validate_name(name))
        rows = await self.db.all("SELECT a.alias, v.number FROM aliases a JOIN versions v ON v.id = a.version_id "
                                 "WHERE a.model_id = ? ORDER BY a.alias", (mid,))
        return {"model": name, "aliases": {r["alias"]: r["number"] for r in rows}}

    async def set_alias(self, name: str, alias: str, number: int, actor: str) -> dict[str, Any]:
        validate_alias(alias)
        async with self.db.transaction() as tx:
            row = await catalog.resolve(tx, f"{validate_name(name)}@{int(number)}")
            await tx.execute("INSERT INTO aliases (model_id, alias, version_id, created_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id, "
                             "created_at = excluded.created_at", (row["model_id"], alias, row["id"], tx.now))
            await events.append(tx, "alias.set", actor, model=row["model_name"], version=row["number"], data={"alias": alias})
        return await self.aliases(name)

    async def remove_alias(self, name: str, alias: str, actor: str) -> dict[str, Any]:
        async with self.db.transaction() as tx:
            mid = await catalog.model_id(tx, validate_name(name))
            cur = await tx.execute("DELETE FROM aliases WHERE model_id = ? AND alias = ?", (mid, alias))
            if cur.rowcount == 0:
                raise NotFound(f"{name} has no alias {alias!r}")
            await events.append(tx, "alias.removed", actor, model=name, data={"alias": alias})
        return await self.aliases(name)


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


def _check_movable(row: Any, to: str) -> None:
    ref = f"{row['model_name']}@{row['number']}"
    if row["status"] != "ready":
        raise Conflict(f"{ref} is {row['status']}; only ready versions change stage")
    if row["purged_at"]:
        raise Conflict(f"{ref}'s files were removed by gc after retention; it cannot be deployed")
    if row["stage"] == to:
        raise Conflict(f"{ref} is already in {to}")


def _in_rule_order(rules: list[tuple[Rule, float | None]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {rule.text: i for i, (rule, _) in enumerate(rules)}
    return sorted(results, key=lambda r: order.get(r["rule"], len(order)))
