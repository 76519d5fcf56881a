"""MLflow's tracking subset and the mlflow-artifacts tree (issue 10).

Experiments, runs (params, tags, metric history), logged models and the run → model outputs,
kept in MLflow's own terms (string ids outside, integer milliseconds) so the stock client
reads back exactly what it logged. The artifact tree maps a path under the mlflow-artifacts
root to a blob of the content-addressed store; a blob an artifact row names is also recorded
in ``blobs``, so gc knows it and keeps it (``gc.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..records import ArtifactEntry, FileRecord, MlflowExperiment, MlflowLoggedModel, MlflowMetric, MlflowRun
from .tx import Sql, Engine, WriteTx

def _ms(tx: WriteTx) -> int:
    return int(tx.now * 1000)


def _kv(rows: Iterable[Any]) -> dict[str, str]:
    return {r["key"]: r["value"] for r in rows}


def _metric(row: Any) -> MlflowMetric:
    value = math.nan if row["is_nan"] else row["value"]
    return MlflowMetric(key=row["key"], value=value, timestamp=row["timestamp"], step=row["step"],
                        model_id=row["model_id"])


# -- experiments -----------------------------------------------------------------------------------


def _experiment(q: Sql, row: Any) -> MlflowExperiment:
    tags = _kv(q.all("SELECT key, value FROM mlflow_experiment_tags WHERE experiment_id = ?", (row["id"],)))
    return MlflowExperiment(id=row["id"], name=row["name"], artifact_location=row["artifact_location"],
                            lifecycle_stage=row["lifecycle_stage"], created_ms=row["created_ms"],
                            updated_ms=row["updated_ms"], tags=tags)


def experiment_by_id(q: Sql, experiment_id: int) -> MlflowExperiment | None:
    row = q.one("SELECT * FROM mlflow_experiments WHERE id = ?", (experiment_id,))
    return _experiment(q, row) if row is not None else None


def experiment_by_name(q: Sql, name: str) -> MlflowExperiment | None:
    row = q.one("SELECT * FROM mlflow_experiments WHERE name = ?", (name,))
    return _experiment(q, row) if row is not None else None


def create_experiment(tx: WriteTx, name: str, artifact_location: str | None, tags: dict[str, str],
                      default_root: str) -> MlflowExperiment | None:
    """A new experiment (None when the name is taken); its artifacts under ``default_root/<id>``
    unless the client names a location."""
    if tx.one("SELECT 1 FROM mlflow_experiments WHERE name = ?", (name,)):
        return None
    now = _ms(tx)
    eid = tx.one("INSERT INTO mlflow_experiments (name, artifact_location, created_ms, updated_ms) "
                 "VALUES (?, '', ?, ?) RETURNING id", (name, now, now))["id"]
    tx.execute("UPDATE mlflow_experiments SET artifact_location = ? WHERE id = ?",
               (artifact_location or f"{default_root}/{eid}", eid))
    tx.executemany("INSERT INTO mlflow_experiment_tags VALUES (?, ?, ?)", [(eid, k, v) for k, v in tags.items()])
    return experiment_by_id(tx, eid)


# -- runs ------------------------------------------------------------------------------------------


def _latest_metrics(q: Sql, column: str, owner: str) -> list[MlflowMetric]:
    rows = q.all(
        "SELECT key, value, is_nan, timestamp, step, model_id FROM (SELECT *, row_number() OVER (PARTITION BY key "
        f"ORDER BY step DESC, timestamp DESC, is_nan, value DESC) AS rank FROM mlflow_metrics WHERE {column} = ?) "
        "WHERE rank = 1 ORDER BY key", (owner,))
    return [_metric(r) for r in rows]


def run_by_id(q: Sql, run_id: str) -> MlflowRun | None:
    row = q.one("SELECT * FROM mlflow_runs WHERE run_id = ?", (run_id,))
    if row is None:
        return None
    params = _kv(q.all("SELECT key, value FROM mlflow_params WHERE run_id = ? ORDER BY key", (run_id,)))
    tags = _kv(q.all("SELECT key, value FROM mlflow_run_tags WHERE run_id = ? ORDER BY key", (run_id,)))
    outputs = [(r["model_id"], r["step"]) for r in q.all(
        "SELECT model_id, step FROM mlflow_run_outputs WHERE run_id = ? ORDER BY model_id", (run_id,))]
    return MlflowRun(run_id=row["run_id"], experiment_id=row["experiment_id"], name=row["name"], user_id=row["user_id"],
                     status=row["status"], start_ms=row["start_ms"], end_ms=row["end_ms"],
                     lifecycle_stage=row["lifecycle_stage"], artifact_uri=row["artifact_uri"], params=params,
                     tags=tags, metrics=_latest_metrics(q, "run_id", run_id), outputs=outputs)


def create_run(tx: WriteTx, run_id: str, experiment_id: int, name: str, user_id: str, start_ms: int | None,
               tags: dict[str, str], artifact_uri: str) -> MlflowRun:
    tx.execute("INSERT INTO mlflow_runs (run_id, experiment_id, name, user_id, start_ms, artifact_uri) "
               "VALUES (?, ?, ?, ?, ?, ?)", (run_id, experiment_id, name, user_id, start_ms, artifact_uri))
    tx.executemany("INSERT INTO mlflow_run_tags VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                   [(run_id, k, v) for k, v in tags.items()])
    run = run_by_id(tx, run_id)
    assert run is not None
    return run


def update_run(tx: WriteTx, run_id: str, *, status: str | None, end_ms: int | None,
               name: str | None) -> MlflowRun | None:
    if tx.one("SELECT 1 FROM mlflow_runs WHERE run_id = ?", (run_id,)) is None:
        return None
    tx.execute("UPDATE mlflow_runs SET status = coalesce(?, status), end_ms = coalesce(?, end_ms), "
               "name = coalesce(?, name) WHERE run_id = ?", (status, end_ms, name, run_id))
    if name is not None:  # the client shows the name from this tag, as MLflow's server keeps them in step
        tx.execute("INSERT INTO mlflow_run_tags VALUES (?, 'mlflow.runName', ?) "
                   "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value", (run_id, name))
    return run_by_id(tx, run_id)


def param_conflicts(q: Sql, run_id: str, params: dict[str, str]) -> list[tuple[str, str, str]]:
    """(key, logged value, new value) of the params already logged with another value."""
    out = []
    for key, value in params.items():
        row = q.one("SELECT value FROM mlflow_params WHERE run_id = ? AND key = ?", (run_id, key))
        if row is not None and row["value"] != value:
            out.append((key, row["value"], value))
    return out


def log_batch(tx: WriteTx, run_id: str, metrics: list[MlflowMetric], params: dict[str, str],
              tags: dict[str, str]) -> list[tuple[str, str, str]]:
    """Metrics, params and tags of a run in one write; the param conflicts instead, writing nothing.

    A param is immutable once logged (MLflow's rule); the same value again is accepted."""
    conflicts = param_conflicts(tx, run_id, params)
    if conflicts:
        return conflicts
    tx.executemany("INSERT INTO mlflow_params VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [(run_id, k, v) for k, v in params.items()])
    tx.executemany("INSERT INTO mlflow_run_tags VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                   [(run_id, k, v) for k, v in tags.items()])
    if "mlflow.runName" in tags:
        tx.execute("UPDATE mlflow_runs SET name = ? WHERE run_id = ?", (tags["mlflow.runName"], run_id))
    tx.executemany("INSERT INTO mlflow_metrics (run_id, key, value, is_nan, timestamp, step, model_id) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(run_id, m.key, None if math.isnan(m.value) else m.value, int(math.isnan(m.value)),
                     m.timestamp, m.step, m.model_id) for m in metrics])
    return []


def delete_run_tag(tx: WriteTx, run_id: str, key: str) -> bool:
    return tx.execute("DELETE FROM mlflow_run_tags WHERE run_id = ? AND key = ?", (run_id, key)).rowcount > 0


def metric_history(q: Sql, run_id: str, key: str) -> list[MlflowMetric]:
    rows = q.all("SELECT key, value, is_nan, timestamp, step, model_id FROM mlflow_metrics "
                 "WHERE run_id = ? AND key = ? ORDER BY step, timestamp, id", (run_id, key))
    return [_metric(r) for r in rows]


def add_outputs(tx: WriteTx, run_id: str, outputs: list[tuple[str, int]]) -> None:
    tx.executemany("INSERT INTO mlflow_run_outputs VALUES (?, ?, ?) ON CONFLICT (run_id, model_id) DO UPDATE SET step = excluded.step",
                   [(run_id, mid, step) for mid, step in outputs])


def experiment_name_of_run(q: Sql, run_id: str) -> str | None:
    row = q.one("SELECT e.name FROM mlflow_runs r JOIN mlflow_experiments e ON e.id = r.experiment_id "
                "WHERE r.run_id = ?", (run_id,))
    return row["name"] if row is not None else None


# -- logged models ---------------------------------------------------------------------------------


def _logged_model(q: Sql, row: Any) -> MlflowLoggedModel:
    mid = row["model_id"]
    tags = _kv(q.all("SELECT key, value FROM mlflow_logged_model_tags WHERE model_id = ? ORDER BY key", (mid,)))
    params = _kv(q.all("SELECT key, value FROM mlflow_logged_model_params WHERE model_id = ? ORDER BY key", (mid,)))
    return MlflowLoggedModel(model_id=mid, experiment_id=row["experiment_id"], name=row["name"],
                             artifact_uri=row["artifact_uri"], status=row["status"],
                             status_message=row["status_message"], model_type=row["model_type"],
                             source_run_id=row["source_run_id"], lifecycle_stage=row["lifecycle_stage"],
                             created_ms=row["created_ms"], updated_ms=row["updated_ms"], tags=tags, params=params,
                             metrics=_latest_metrics(q, "model_id", mid))


def logged_model_by_id(q: Sql, model_id: str) -> MlflowLoggedModel | None:
    row = q.one("SELECT * FROM mlflow_logged_models WHERE model_id = ?", (model_id,))
    return _logged_model(q, row) if row is not None else None


def create_logged_model(tx: WriteTx, model_id: str, experiment_id: int, name: str, artifact_uri: str,
                        source_run_id: str | None, model_type: str, tags: dict[str, str],
                        params: dict[str, str]) -> MlflowLoggedModel:
    now = _ms(tx)
    tx.execute("INSERT INTO mlflow_logged_models (model_id, experiment_id, name, artifact_uri, model_type, "
               "source_run_id, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (model_id, experiment_id, name, artifact_uri, model_type, source_run_id, now, now))
    tx.executemany("INSERT INTO mlflow_logged_model_tags VALUES (?, ?, ?)", [(model_id, k, v) for k, v in tags.items()])
    tx.executemany("INSERT INTO mlflow_logged_model_params VALUES (?, ?, ?)",
                   [(model_id, k, v) for k, v in params.items()])
    model = logged_model_by_id(tx, model_id)
    assert model is not None
    return model


def update_logged_model(tx: WriteTx, model_id: str, *, status: str | None = None, stage: str | None = None,
                        tags: dict[str, str] | None = None, untag: str | None = None,
                        params: dict[str, str] | None = None) -> MlflowLoggedModel | None:
    """Finalize (``status``), delete (``stage``), tag, untag or add params to a logged model; None when unknown."""
    if tx.one("SELECT 1 FROM mlflow_logged_models WHERE model_id = ?", (model_id,)) is None:
        return None
    tx.execute("UPDATE mlflow_logged_models SET status = coalesce(?, status), lifecycle_stage = coalesce(?, "
               "lifecycle_stage), updated_ms = ? WHERE model_id = ?", (status, stage, _ms(tx), model_id))
    tx.executemany("INSERT INTO mlflow_logged_model_tags VALUES (?, ?, ?) "
                   "ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value", [(model_id, k, v) for k, v in (tags or {}).items()])
    tx.executemany("INSERT INTO mlflow_logged_model_params VALUES (?, ?, ?) "
                   "ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                   [(model_id, k, v) for k, v in (params or {}).items()])
    if untag is not None:
        tx.execute("DELETE FROM mlflow_logged_model_tags WHERE model_id = ? AND key = ?", (model_id, untag))
    return logged_model_by_id(tx, model_id)


def search_logged_models(q: Sql, experiment_ids: list[int], *, name: str | None, source_run_id: str | None,
                         limit: int, offset: int) -> list[MlflowLoggedModel]:
    """Active logged models of the experiments, newest first; optionally by name or source run."""
    experiments, params = q.dialect.values([int(e) for e in experiment_ids], "int")
    where = ["lifecycle_stage = 'active'", f"experiment_id IN {experiments}"]
    if name is not None:
        where.append("name = ?")
        params.append(name)
    if source_run_id is not None:
        where.append("source_run_id = ?")
        params.append(source_run_id)
    rows = q.all(f"SELECT * FROM mlflow_logged_models WHERE {' AND '.join(where)} "
                 "ORDER BY created_ms DESC, model_id LIMIT ? OFFSET ?", (*params, limit, offset))
    return [_logged_model(q, r) for r in rows]


# -- the artifact tree -----------------------------------------------------------------------------


def _where_under(prefix: str) -> tuple[str, tuple[str, ...]]:
    """The paths strictly under the folder ``prefix``: a range (an index walk, no LIKE escaping);
    '0' is the character after '/'."""
    if not prefix:
        return "TRUE", ()
    return "path > ? AND path < ?", (prefix + "/", prefix + "0")


def put_artifact(tx: WriteTx, path: str, sha256: str, size: int) -> str | None:
    """Record ``path`` → blob (replacing an earlier upload of the same path) and the blob itself;
    a reason instead when the path collides with the tree (a file where a folder is, or under a file)."""
    where, params = _where_under(path)
    if tx.one(f"SELECT 1 FROM mlflow_artifacts WHERE {where} LIMIT 1", params):
        return f"{path} is a folder of artifacts"
    parts = path.split("/")
    ancestors = ["/".join(parts[:i]) for i in range(1, len(parts))]
    folders, folder_params = tx.dialect.values(ancestors, "text")
    if ancestors and tx.one(f"SELECT 1 FROM mlflow_artifacts WHERE path IN {folders}", folder_params):
        return f"a file of {path}'s folders already exists as an artifact"
    tx.execute("INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (sha256, size, tx.now))
    tx.execute("INSERT INTO mlflow_artifacts (path, sha256, size, created_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
               "created_at = excluded.created_at", (path, sha256, size, tx.now))
    return None


def artifact(q: Sql, path: str) -> FileRecord | None:
    row = q.one("SELECT path, sha256, size FROM mlflow_artifacts WHERE path = ?", (path,))
    return FileRecord(path=row["path"], sha256=row["sha256"], size=row["size"]) if row is not None else None


def files_under(q: Sql, prefix: str) -> list[FileRecord]:
    """Every artifact file under the folder ``prefix`` (paths relative to it), in path order."""
    where, params = _where_under(prefix)
    cut = len(prefix) + 1 if prefix else 0
    return [FileRecord(path=r["path"][cut:], sha256=r["sha256"], size=r["size"])
            for r in q.all(f"SELECT path, sha256, size FROM mlflow_artifacts WHERE {where} ORDER BY path", params)]


def list_dir(q: Sql, prefix: str) -> list[ArtifactEntry]:
    """One level of the folder ``prefix``: its files (with sizes) and sub-folders, by path."""
    entries: dict[str, ArtifactEntry] = {}
    for f in files_under(q, prefix):
        head, sep, _ = f.path.partition("/")
        path = f"{prefix}/{head}" if prefix else head
        entries[head] = ArtifactEntry(path=path, is_dir=True) if sep else ArtifactEntry(path=path, is_dir=False,
                                                                                        size=f.size)
    return [entries[k] for k in sorted(entries)]


def delete_artifacts(tx: WriteTx, path: str) -> int:
    """Remove the file ``path`` or everything under the folder ``path``; how many rows went.
    Their blobs stay until gc finds nothing references them."""
    where, params = _where_under(path)
    gone = tx.execute(f"DELETE FROM mlflow_artifacts WHERE {where}", params).rowcount
    return gone + tx.execute("DELETE FROM mlflow_artifacts WHERE path = ?", (path,)).rowcount


class TrackingStore:
    """The MLflow tracking aggregate: each method one read hop or one write hop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # experiments

    async def experiment(self, experiment_id: int) -> MlflowExperiment | None:
        return await self.engine.read(lambda q: experiment_by_id(q, experiment_id))

    async def experiment_by_name(self, name: str) -> MlflowExperiment | None:
        return await self.engine.read(lambda q: experiment_by_name(q, name))

    async def create_experiment(self, name: str, artifact_location: str | None, tags: dict[str, str],
                                default_root: str) -> MlflowExperiment | None:
        """The new experiment, or None when the name is taken."""
        return await self.engine.write(lambda tx: create_experiment(tx, name, artifact_location, tags, default_root))

    # runs

    async def run(self, run_id: str) -> MlflowRun | None:
        return await self.engine.read(lambda q: run_by_id(q, run_id))

    async def run_with_experiment(self, run_id: str) -> tuple[MlflowRun, str] | None:
        """A run and its experiment's name, in one read."""
        def read(q: Sql) -> tuple[MlflowRun, str] | None:
            run = run_by_id(q, run_id)
            return (run, experiment_name_of_run(q, run_id) or "") if run is not None else None
        return await self.engine.read(read)

    async def create_run(self, run_id: str, experiment_id: int, name: str, user_id: str, start_ms: int | None,
                         tags: dict[str, str], artifact_uri: str) -> MlflowRun:
        return await self.engine.write(
            lambda tx: create_run(tx, run_id, experiment_id, name, user_id, start_ms, tags, artifact_uri))

    async def update_run(self, run_id: str, *, status: str | None, end_ms: int | None,
                         name: str | None) -> MlflowRun | None:
        return await self.engine.write(lambda tx: update_run(tx, run_id, status=status, end_ms=end_ms, name=name))

    async def log_batch(self, run_id: str, metrics: list[MlflowMetric], params: dict[str, str],
                        tags: dict[str, str]) -> list[tuple[str, str, str]]:
        """Log all of it in one write; or, when a param would change, nothing and the conflicts."""
        return await self.engine.write(lambda tx: log_batch(tx, run_id, metrics, params, tags))

    async def delete_run_tag(self, run_id: str, key: str) -> bool:
        return await self.engine.write(lambda tx: delete_run_tag(tx, run_id, key))

    async def metric_history(self, run_id: str, key: str) -> list[MlflowMetric]:
        return await self.engine.read(lambda q: metric_history(q, run_id, key))

    async def add_outputs(self, run_id: str, outputs: list[tuple[str, int]]) -> None:
        await self.engine.write(lambda tx: add_outputs(tx, run_id, outputs))

    # logged models

    async def logged_model(self, model_id: str) -> MlflowLoggedModel | None:
        return await self.engine.read(lambda q: logged_model_by_id(q, model_id))

    async def create_logged_model(self, model_id: str, experiment_id: int, name: str, artifact_uri: str,
                                  source_run_id: str | None, model_type: str, tags: dict[str, str],
                                  params: dict[str, str]) -> MlflowLoggedModel:
        return await self.engine.write(lambda tx: create_logged_model(
            tx, model_id, experiment_id, name, artifact_uri, source_run_id, model_type, tags, params))

    async def update_logged_model(self, model_id: str, **changes: Any) -> MlflowLoggedModel | None:
        return await self.engine.write(lambda tx: update_logged_model(tx, model_id, **changes))

    async def search_logged_models(self, experiment_ids: list[int], *, name: str | None, source_run_id: str | None,
                                   limit: int, offset: int) -> list[MlflowLoggedModel]:
        return await self.engine.read(lambda q: search_logged_models(
            q, experiment_ids, name=name, source_run_id=source_run_id, limit=limit, offset=offset))

    # artifacts

    async def put_artifact(self, path: str, sha256: str, size: int) -> str | None:
        """Record one uploaded file; a reason instead when its path collides with the tree."""
        return await self.engine.write(lambda tx: put_artifact(tx, path, sha256, size))

    async def artifact(self, path: str) -> FileRecord | None:
        return await self.engine.read(lambda q: artifact(q, path))

    async def files_under(self, prefix: str) -> list[FileRecord]:
        return await self.engine.read(lambda q: files_under(q, prefix))

    async def list_dir(self, prefix: str) -> list[ArtifactEntry]:
        return await self.engine.read(lambda q: list_dir(q, prefix))

    async def delete_artifacts(self, path: str) -> int:
        return await self.engine.write(lambda tx: delete_artifacts(tx, path))
