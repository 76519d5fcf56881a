"""Retention and garbage collection, and the blob bookkeeping verify reads.

What is kept is policy (``services/gc.py``); the queries here find the versions past the
cutoff it gives, the rollback targets it protects, and the blobs no kept version references,
and the purge rechecks those blobs inside the write, on fresh state.
"""

from __future__ import annotations

from typing import Any

from ..records import GcPlan
from . import catalog, events
from .tx import Sql, Engine, WriteTx


def rollback_targets(q: Sql, keep: int, model_id: int | None = None) -> set[int]:
    """Ids of the last ``keep`` live versions that left production (per model)."""
    rows = q.all(
        "SELECT version_id FROM (SELECT version_id, model_id, max(id) AS last_left, "
        "row_number() OVER (PARTITION BY model_id ORDER BY max(id) DESC) AS rank "
        "FROM stage_changes WHERE from_stage = 'production' "
        # After a rollback the production version has left production before: it is not a
        # former one, and must not take one of the places. A deleted one cannot be rolled
        # back to, so the next older one takes its place.
        "AND version_id NOT IN (SELECT id FROM versions WHERE stage = 'production' OR deleted_at IS NOT NULL) "
        + ("AND model_id = ? " if model_id is not None else "")
        + "GROUP BY model_id, version_id) WHERE rank <= ?",
        (*((model_id,) if model_id is not None else ()), keep))
    return {r["version_id"] for r in rows}


def _plan(q: Sql, cutoff: float, keep: int) -> GcPlan:
    protected = rollback_targets(q, keep)
    expired = [r for r in q.all(
        "SELECT v.id, v.number, m.name, v.stage_changed_at, v.deleted_at FROM versions v "
        "JOIN models m ON m.id = v.model_id WHERE v.purged_at IS NULL AND (v.deleted_at IS NOT NULL OR "
        "(v.stage = 'archived' AND coalesce(v.stage_changed_at, v.created_at) < ?))",
        (cutoff,)) if r["id"] not in protected]
    expired_ids = {r["id"] for r in expired}
    expired_in, expired_params = q.dialect.values(sorted(expired_ids), "int")
    live = {r["sha256"] for r in q.all(
        "SELECT DISTINCT mf.sha256 FROM manifest mf JOIN versions v ON v.id = mf.version_id WHERE v.purged_at IS NULL "
        f"AND v.id NOT IN {expired_in}", expired_params)}
    # A blob an MLflow artifact names is live whatever the versions say (issue 10).
    live |= {r["sha256"] for r in q.all("SELECT DISTINCT sha256 FROM mlflow_artifacts")}
    # A kept version's signature bundle is live too (issue 12).
    live |= {r["bundle_sha256"] for r in q.all(
        "SELECT DISTINCT s.bundle_sha256 FROM version_signatures s JOIN versions v ON v.id = s.version_id "
        "WHERE s.bundle_sha256 IS NOT NULL AND v.purged_at IS NULL "
        f"AND v.id NOT IN {expired_in}", expired_params)}
    blobs = [(r["sha256"], r["size"]) for r in q.all("SELECT sha256, size FROM blobs ORDER BY sha256")]
    return GcPlan(versions=[f"{r['name']}@{r['number']}" for r in expired], version_ids=sorted(expired_ids),
                  blobs=[b for b in blobs if b[0] not in live], protected_former_production=len(protected),
                  known_blobs=frozenset(sha for sha, _ in blobs))


def _purge(tx: WriteTx, version_ids: list[int], actor: str, event_data: dict[str, Any]) -> tuple[list[str], list[tuple[str, int]]]:
    tx.executemany("UPDATE versions SET purged_at = ? WHERE id = ? AND (stage = 'archived' OR deleted_at IS NOT NULL)",
                   [(tx.now, vid) for vid in version_ids])
    # Rechecked inside the write: only blobs no unpurged version references go.
    gone = [r["sha256"] for r in tx.all(
        "SELECT b.sha256 FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM manifest mf JOIN versions v "
        "ON v.id = mf.version_id WHERE mf.sha256 = b.sha256 AND v.purged_at IS NULL) "
        "AND NOT EXISTS (SELECT 1 FROM mlflow_artifacts a WHERE a.sha256 = b.sha256) "
        "AND NOT EXISTS (SELECT 1 FROM version_signatures s JOIN versions v ON v.id = s.version_id "
        "WHERE s.bundle_sha256 = b.sha256 AND v.purged_at IS NULL)")]
    tx.executemany("DELETE FROM blobs WHERE sha256 = ?", [(s,) for s in gone])
    events.append(tx, "gc.completed", actor, data={**event_data, "blobs": len(gone)})
    # A deleted model's folders went when it was deleted (its name may be someone else's now).
    purged_in, purged_params = tx.dialect.values(version_ids, "int")
    purged = [(r["name"], r["number"]) for r in tx.all(
        "SELECT m.name, v.number FROM versions v JOIN models m ON m.id = v.model_id "
        f"WHERE v.purged_at IS NOT NULL AND m.deleted_at IS NULL AND v.id IN {purged_in}", purged_params)]
    return gone, purged


def _blobs_to_verify(q: Sql, ref: str | None) -> list[tuple[str, int]]:
    if ref:
        version = catalog.resolve(q, ref)
        rows = q.all("SELECT DISTINCT sha256, size FROM manifest WHERE version_id = ?", (version.id,))
    else:
        rows = q.all("SELECT sha256, size FROM blobs ORDER BY sha256")
    return [(r["sha256"], r["size"]) for r in rows]


def _blob_users(q: Sql, digests: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Version files (model, number, stage, path), then MLflow artifacts (model None, path
    ``mlflow-artifacts:/…``), per digest."""
    return {sha: [{"model": r["name"], "number": r["number"], "stage": r["stage"], "path": r["path"]} for r in q.all(
        "SELECT m.name, v.number, v.stage, mf.path FROM manifest mf JOIN versions v ON v.id = mf.version_id "
        "JOIN models m ON m.id = v.model_id WHERE mf.sha256 = ? ORDER BY m.name, v.number", (sha,))]
        + [{"model": None, "number": None, "stage": None, "path": f"mlflow-artifacts:/{r['path']}"} for r in q.all(
            "SELECT path FROM mlflow_artifacts WHERE sha256 = ? ORDER BY path", (sha,))]
        for sha in digests}


class GcStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def plan(self, *, cutoff: float, keep_former_production: int) -> GcPlan:
        """Versions archived before ``cutoff`` or deleted (less the rollback targets), and the
        blobs only they reference, in one read."""
        return await self.engine.read(lambda q: _plan(q, cutoff, keep_former_production))

    async def purge(self, version_ids: list[int], *, actor: str,
                    event_data: dict[str, Any]) -> tuple[list[str], list[tuple[str, int]]]:
        """Mark the versions purged, delete the blob rows no unpurged version references, log
        gc.completed (``event_data`` plus the blobs deleted) in one write; (digests deleted,
        (model, number) of the purged versions whose serving folders should go)."""
        return await self.engine.write(lambda tx: _purge(tx, version_ids, actor, event_data))

    async def rollback_targets(self, model_id: int | None = None, *, keep: int) -> set[int]:
        return await self.engine.read(lambda q: rollback_targets(q, keep, model_id))

    # -- verify ----------------------------------------------------------------------------------

    async def blobs_to_verify(self, ref: str | None) -> list[tuple[str, int]]:
        """(sha256, size) of one version's blobs (``ref``) or of every stored blob."""
        return await self.engine.read(lambda q: _blobs_to_verify(q, ref))

    async def blob_users(self, digests: list[str]) -> dict[str, list[dict[str, Any]]]:
        """For each digest, the files that hold it: model, number, stage, path (by model, number)."""
        return await self.engine.read(lambda q: _blob_users(q, digests))
