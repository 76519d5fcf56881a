"""Promotion gate rules.

A gate is a rule text for a target, per model or registry-wide (``model_id`` NULL): a stage
(``stage`` set, ``alias`` NULL) or an alias (``alias`` set, ``stage`` NULL; migration 8).
The store keeps the text as given by the service (already parsed and normalised there);
parsing and evaluating rules is policy (``services/gates.py``).
"""

from __future__ import annotations

from typing import Any

from modelreg.shared.errors import NotFound

from ..records import GateRecord
from . import catalog, events
from .tx import Sql, Engine, WriteTx

_GATE = "SELECT g.*, m.name AS model FROM gates g LEFT JOIN models m ON m.id = g.model_id"


def gate_record(row: Any) -> GateRecord:
    return GateRecord(id=row["id"], model=row["model"], stage=row["stage"], alias=row["alias"], rule=row["rule"],
                      timeout=row["timeout"], created_at=row["created_at"], created_by=row["created_by"])


def rules_for(q: Sql, model_id: int, stage: str) -> list[GateRecord]:
    """The rules guarding ``stage`` for a model: registry-wide ones first, then the model's own."""
    rows = q.all(f"{_GATE} WHERE g.stage = ? AND (g.model_id IS NULL OR g.model_id = ?) "
                 "ORDER BY g.model_id IS NOT NULL, g.id", (stage, model_id))
    return [gate_record(r) for r in rows]


def alias_rules_for(q: Sql, model_id: int, alias: str) -> list[GateRecord]:
    """The rules guarding a model's ``alias``: registry-wide ones first, then the model's own."""
    rows = q.all(f"{_GATE} WHERE g.alias = ? AND (g.model_id IS NULL OR g.model_id = ?) "
                 "ORDER BY g.model_id IS NOT NULL, g.id", (alias, model_id))
    return [gate_record(r) for r in rows]


def list_gates(q: Sql, model: str | None, stage: str | None, alias: str | None = None) -> list[GateRecord]:
    where, params = [], []
    if model:
        where.append("(m.name = ? OR g.model_id IS NULL)")
        params.append(model)
    if stage:
        where.append("g.stage = ?")
        params.append(stage)
    if alias:
        where.append("g.alias = ?")
        params.append(alias)
    rows = q.all(_GATE + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY g.id", params)
    return [gate_record(r) for r in rows]


def _target(stage: str | None, alias: str | None) -> dict[str, str]:
    """What an event says a gate guards: {"stage": …} or {"alias": …}."""
    return {"alias": alias} if alias is not None else {"stage": stage or ""}


def add_gate(tx: WriteTx, model: str | None, stage: str | None, rule: str, timeout: float | None,
             actor: str, alias: str | None = None) -> tuple[GateRecord, list[str]]:
    """Insert a rule for a stage or an alias and its gate.added event;
    (the gate, the metric keys the model's versions record)."""
    mid = catalog.model_id(tx, model) if model else None
    if mid is not None:  # the stored spelling, not the caller's
        model = tx.one("SELECT name FROM models WHERE id = ?", (mid,))["name"]
    stage = None if alias is not None else stage
    gid = tx.one("INSERT INTO gates (model_id, stage, alias, rule, timeout, created_at, created_by) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                 (mid, stage, alias, rule, timeout, tx.now, actor))["id"]
    events.append(tx, "gate.added", actor, model=model, data={"id": gid, **_target(stage, alias), "rule": rule})
    gate = GateRecord(id=gid, model=model, stage=stage, alias=alias, rule=rule, timeout=timeout, created_at=tx.now,
                      created_by=actor)
    return gate, catalog.metric_keys(tx, mid)


def remove_gate(tx: WriteTx, gate_id: int, actor: str) -> GateRecord:
    row = tx.one(_GATE + " WHERE g.id = ?", (gate_id,))
    if row is None:
        raise NotFound(f"no gate {gate_id}")
    tx.execute("DELETE FROM gates WHERE id = ?", (gate_id,))
    events.append(tx, "gate.removed", actor, model=row["model"],
                  data={"id": gate_id, **_target(row["stage"], row["alias"]), "rule": row["rule"]})
    return gate_record(row)


class GateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def list(self, model: str | None = None, stage: str | None = None,
                   alias: str | None = None) -> list[GateRecord]:
        """Every gate, or those that apply to ``model`` (its own and the registry-wide ones), ``stage``, ``alias``."""
        return await self.engine.read(lambda q: list_gates(q, model, stage, alias))

    async def rules_for(self, model_id: int, stage: str) -> list[GateRecord]:
        return await self.engine.read(lambda q: rules_for(q, model_id, stage))

    async def add(self, model: str | None, stage: str | None, rule: str, timeout: float | None,
                  actor: str, alias: str | None = None) -> tuple[GateRecord, list[str]]:
        """Add a rule for a stage or an alias (one write); also returns the metric keys known for the model."""
        return await self.engine.write(lambda tx: add_gate(tx, model, stage, rule, timeout, actor, alias))

    async def remove(self, gate_id: int, actor: str) -> GateRecord:
        return await self.engine.write(lambda tx: remove_gate(tx, gate_id, actor))
