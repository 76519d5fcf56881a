"""Lineage (PRODUCT.md §3): datasets, runs and edges, queried both ways."""

from __future__ import annotations

import json
from typing import Any

from modelreg.shared.errors import InvalidInput, NotFound
from modelreg.shared.names import parse_dataset_ref, validate_name
from modelreg.shared.timefmt import iso

from . import catalog
from .tx import Sql, Engine, WriteTx

RELATIONS = ("trained_on", "evaluated_on", "produced_by", "derived_from")
MAX_DEPTH = 25
# Epoch seconds that every view of a run can show as a date (years 1 to 9999).
_FIRST_TS, _LAST_TS = -62135596800.0, 253402300799.0


def ensure_dataset(tx: WriteTx, ref: str, digest: str | None = None, uri: str | None = None) -> int:
    ds = parse_dataset_ref(ref)
    tx.execute(
        "INSERT INTO datasets (name, version, digest, uri, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (name, version) DO UPDATE SET digest = coalesce(excluded.digest, datasets.digest), "
        "uri = coalesce(excluded.uri, datasets.uri)",
        (ds.name, ds.version, digest, uri, tx.now),
    )
    row = tx.one("SELECT id FROM datasets WHERE name = ? AND version = ?", (ds.name, ds.version))
    return row["id"]


def ensure_run(tx: WriteTx, run: dict[str, Any]) -> int:
    run_id = run["id"]
    for key in ("started_at", "ended_at"):
        # Stored once, a time iso() cannot show would break every later read of the run.
        if run.get(key) is not None and not _FIRST_TS <= run[key] <= _LAST_TS:
            raise InvalidInput(f"run {key} {run[key]!r} is not a date between the years 1 and 9999 "
                               "(epoch seconds are expected, not milliseconds or nanoseconds)")
    tx.execute(
        "INSERT INTO runs (run_id, experiment, started_at, ended_at, hardware, code_revision, hyperparameters, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
        "experiment = coalesce(excluded.experiment, runs.experiment), started_at = coalesce(excluded.started_at, runs.started_at), "
        "ended_at = coalesce(excluded.ended_at, runs.ended_at), hardware = coalesce(excluded.hardware, runs.hardware), "
        "code_revision = coalesce(excluded.code_revision, runs.code_revision)",
        (run_id, run.get("experiment"), run.get("started_at"), run.get("ended_at"), run.get("hardware"),
         run.get("code_revision"), json.dumps(run.get("hyperparameters") or {}), tx.now),
    )
    row = tx.one("SELECT id FROM runs WHERE run_id = ?", (run_id,))
    return row["id"]


def add_edges(tx: WriteTx, version_id: int, *, datasets: list[dict[str, Any]], run: dict[str, Any] | None,
                    parents: list[str], external_parents: list[str]) -> None:
    rows: list[tuple[Any, ...]] = []
    for ds in datasets:
        dsid = ensure_dataset(tx, ds["ref"], ds.get("digest"), ds.get("uri"))
        rows.append((version_id, ds.get("relation", "trained_on"), dsid, None, None, None))
    if run is not None:
        rows.append((version_id, "produced_by", None, ensure_run(tx, run), None, None))
    for parent in parents:
        prow = catalog.resolve(tx, parent)
        if prow.id == version_id:
            raise InvalidInput("a version cannot be derived from itself")
        rows.append((version_id, "derived_from", None, None, prow.id, None))
    for ext in external_parents:
        rows.append((version_id, "derived_from", None, None, None, ext))
    tx.executemany(
        "INSERT INTO lineage (version_id, relation, dataset_id, run_id, parent_version_id, external, created_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, {tx.now})", rows)


_UPSTREAM = (
    "SELECT l.relation, d.name AS ds_name, d.version AS ds_version, d.digest AS ds_digest, d.uri AS ds_uri, "
    "r.run_id, r.experiment, r.started_at, r.ended_at, r.hardware, r.code_revision, r.hyperparameters, "
    "pm.name AS parent_model, pv.number AS parent_number, pv.stage AS parent_stage, l.external, "
    "pv.id AS parent_id, pv.deleted_at AS parent_deleted, pm.deleted_at AS parent_model_deleted "
    "FROM lineage l LEFT JOIN datasets d ON d.id = l.dataset_id LEFT JOIN runs r ON r.id = l.run_id "
    "LEFT JOIN versions pv ON pv.id = l.parent_version_id LEFT JOIN models pm ON pm.id = pv.model_id "
    "WHERE l.version_id = ? ORDER BY l.id")


def _upstream(q: Sql, version_id: int) -> tuple[dict[str, Any], list[Any]]:
    """Direct upstream of one version, and the rows of its parents in this registry (by id)."""
    out: dict[str, Any] = {"datasets": [], "run": None, "parents": []}
    parents = []
    for r in q.all(_UPSTREAM, (version_id,)):
        if r["ds_name"] is not None:
            out["datasets"].append({"dataset": f"{r['ds_name']}@{r['ds_version']}", "relation": r["relation"],
                                    "digest": r["ds_digest"], "uri": r["ds_uri"]})
        elif r["run_id"] is not None:
            duration = (r["ended_at"] - r["started_at"]) if r["ended_at"] and r["started_at"] else None
            out["run"] = {"id": r["run_id"], "experiment": r["experiment"], "started_at": iso(r["started_at"]),
                          "ended_at": iso(r["ended_at"]), "duration_s": duration, "hardware": r["hardware"],
                          "code_revision": r["code_revision"], "hyperparameters": json.loads(r["hyperparameters"])}
        elif r["parent_model"] is not None:
            out["parents"].append({"ref": f"{r['parent_model']}@{r['parent_number']}", "stage": r["parent_stage"]})
            parents.append(r)
        elif r["external"]:
            out["parents"].append({"ref": r["external"], "external": True})
            parents.append(None)
    return out, parents


def upstream_edges(q: Sql, version_id: int) -> dict[str, Any]:
    """Direct upstream of one version: datasets, run, parents."""
    return _upstream(q, version_id)[0]


def upstream_tree(q: Sql, ref: str) -> dict[str, Any]:
    """The version and, recursively, where it came from (parents of parents…), walked by id."""
    row = catalog.resolve(q, ref)
    return _up(q, row.id, row.ref, row.stage, set(), 0)


def _up(q: Sql, vid: int, label: str, stage: str, seen: set[int], depth: int) -> dict[str, Any]:
    seen.add(vid)
    edges, rows = _upstream(q, vid)
    node = {"ref": label, "stage": stage, "datasets": edges["datasets"], "run": edges["run"], "parents": []}
    for parent, prow in zip(edges["parents"], rows):
        if prow is None or depth >= MAX_DEPTH:
            node["parents"].append(parent)
            continue
        if prow["parent_deleted"] is not None or prow["parent_model_deleted"] is not None:
            # As when the walk resolved each parent's ref: a deleted one is not found.
            raise NotFound(f"{parent['ref']} was deleted", {"ref": parent["ref"], "deleted": True})
        if prow["parent_id"] in seen:
            node["parents"].append({**parent, "cycle": True})
            continue
        node["parents"].append(_up(q, prow["parent_id"], parent["ref"], prow["parent_stage"], seen, depth + 1))
    seen.discard(vid)  # seen holds the current path only: a shared ancestor is not a cycle
    return node


def downstream_tree(q: Sql, ref: str) -> dict[str, Any]:
    """What was derived from a version, recursively."""
    row = catalog.resolve(q, ref)
    return _down(q, row.id, row.ref, row.stage, set(), 0)


def _down(q: Sql, vid: int, label: str, stage: str, seen: set[int], depth: int) -> dict[str, Any]:
    seen.add(vid)
    children = q.all(
        "SELECT v.id, v.number, v.stage, m.name FROM lineage l JOIN versions v ON v.id = l.version_id "
        "JOIN models m ON m.id = v.model_id WHERE l.parent_version_id = ? AND v.deleted_at IS NULL "
        "ORDER BY m.name, v.number LIMIT 1000", (vid,))
    node: dict[str, Any] = {"ref": label, "stage": stage, "children": []}
    for c in children:
        child_label = f"{c['name']}@{c['number']}"
        if c["id"] in seen or depth >= MAX_DEPTH:
            node["children"].append({"ref": child_label, "stage": c["stage"], "children": [], "truncated": True})
            continue
        node["children"].append(_down(q, c["id"], child_label, c["stage"], seen, depth + 1))
    return node


def version_lineage(q: Sql, ref: str, up: bool, down: bool) -> dict[str, Any]:
    out = {}
    if up:
        out["upstream"] = upstream_tree(q, ref)
    if down:
        out["downstream"] = downstream_tree(q, ref)
    return out


def dataset_users(q: Sql, dataset: str) -> dict[str, Any]:
    """Every version trained or evaluated on a dataset (``NAME@VER``, or ``NAME`` for all its versions)."""
    if "@" in dataset:
        ds = parse_dataset_ref(dataset)
        cond, params = "d.name = ? AND d.version = ?", (ds.name, ds.version)
    else:
        validate_name(dataset, "dataset name")
        cond, params = "d.name = ?", (dataset,)
    known = q.all(f"SELECT d.name, d.version FROM datasets d WHERE {cond}", params)
    rows = q.all(
        "SELECT m.name, v.number, v.stage, v.status, v.created_at, l.relation, d.name AS ds_name, d.version AS ds_version "
        "FROM lineage l JOIN datasets d ON d.id = l.dataset_id JOIN versions v ON v.id = l.version_id "
        f"JOIN models m ON m.id = v.model_id WHERE {cond} AND v.deleted_at IS NULL ORDER BY m.name, v.number", params)
    return {
        "dataset": dataset,
        "known": bool(known),
        "items": [{"ref": f"{r['name']}@{r['number']}", "model": r["name"], "version": r["number"],
                   "stage": r["stage"], "status": r["status"], "relation": r["relation"],
                   "dataset": f"{r['ds_name']}@{r['ds_version']}", "created_at": iso(r["created_at"])}
                  for r in rows],
    }


class LineageStore:
    """The lineage aggregate: each method one read hop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def version_lineage(self, ref: str, *, up: bool, down: bool) -> dict[str, Any]:
        """``{"upstream": tree, "downstream": tree}`` (the directions asked for) of a version."""
        return await self.engine.read(lambda q: version_lineage(q, ref, up, down))

    async def dataset_users(self, dataset: str) -> dict[str, Any]:
        return await self.engine.read(lambda q: dataset_users(q, dataset))
