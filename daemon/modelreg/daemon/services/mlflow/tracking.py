"""MLflow's tracking subset: what a training script's ``mlflow.start_run()`` and
``mlflow.<flavor>.log_model(…, registered_model_name=…)`` call (issue 10).

Experiments (create, get, get by name), runs (create, update, get, params, metrics, tags,
log-batch, metric history, outputs) and logged models (create, get, finalize, tags, params,
delete, search), with MLflow's field names and rules (a param never changes once logged, keys
and values within MLflow's limits). Replies are the JSON views of MLflow's protos.

The registry side asks two things of a run (``Tracking.files_at``, ``Tracking.run_facts``):
the stored files a model-version source names, and what the run knew (experiment, params,
latest metrics), so a version registered from a training script arrives with its lineage.
Artifact locations are as the stock server with ``--serve-artifacts`` gives them:
``mlflow-artifacts:/<experiment>/<run>/artifacts`` and
``mlflow-artifacts:/<experiment>/models/<model id>/artifacts``.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any

from modelreg.shared.errors import Conflict, InvalidInput, NotFound

from ...store import Store
from ...store.records import MlflowExperiment, MlflowLoggedModel, MlflowMetric, MlflowRun, RunFacts

ARTIFACT_SCHEME = "mlflow-artifacts:"
ARTIFACT_ROOT = "mlflow-artifacts:"  # experiment N keeps its artifacts under mlflow-artifacts:/N
REGISTRY_FOLDER = "_registry"  # mlflow-artifacts:/_registry/<model>/<version>: a version's own files

# MLflow's limits (mlflow/utils/validation.py), so a request the stock server refuses is refused here.
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_RESULTS = 1000
DIGITS = re.compile(r"[0-9]{1,18}")  # an id or a number: ASCII digits within SQLite's INTEGER
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MODEL_STATUSES = ("LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
                  "LOGGED_MODEL_UPLOAD_FAILED")


# -- parsing MLflow's JSON ------------------------------------------------------------------------


def _str(p: dict[str, Any], key: str, *, required: bool = True, default: str | None = None) -> str | None:
    value = p.get(key)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"Missing value for required parameter '{key}'. See the API docs for more "
                               "information about request parameters.")
        return default
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInput(f"Invalid value {value!r} for parameter '{key}' supplied: it must be a string")
    return str(value)


def _int(p: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = p.get(key)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
        if not -2**63 <= number < 2**63:  # what SQLite's INTEGER holds
            raise ValueError
        return number
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"Invalid value {str(value)[:100]!r} for parameter '{key}' supplied: it must be an "
                           "integer") from None


def _float(value: Any, what: str) -> float:
    """A metric value: a JSON number or the strings protobuf's JSON uses for NaN and infinities."""
    if isinstance(value, bool):
        raise InvalidInput(f"Invalid value {value!r} for {what}: it must be a number")
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"Invalid value {str(value)[:100]!r} for {what}: it must be a number") from None


def _key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"Invalid {what} {str(value)[:100]!r}: it must be a non-empty string")
    if len(value) > MAX_KEY:
        raise InvalidInput(f"{what} '{value[:50]}…' had length {len(value)}, which exceeded length limit of {MAX_KEY}")
    if value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise InvalidInput(f"Invalid {what} {value!r}: names may be treated as files in certain cases, "
                           "and must not resolve to other names when treated as such")
    return value


def _value(value: Any, what: str, limit: int) -> str:
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput(f"Invalid {what} {str(value)[:100]!r}: it must be a string")
    value = str(value)
    if len(value) > limit:
        raise InvalidInput(f"{what} had length {len(value)}, which exceeded length limit of {limit}")
    return value


def _pairs(items: Any, what: str, limit: int) -> dict[str, str]:
    """MLflow's [{"key", "value"}] lists as a dict (a repeated key: the last wins)."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidInput(f"Invalid value for '{what}s': it must be a list of {{key, value}} objects")
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"Invalid {what} {str(item)[:100]!r}: it must be an object with key and value")
        out[_key(item.get("key"), f"{what} name")] = _value(item.get("value"), f"{what} value", limit)
    return out


def _metric(m: Any, default_ts: int) -> MlflowMetric:
    if not isinstance(m, dict):
        raise InvalidInput(f"Invalid metric {str(m)[:100]!r}: it must be an object")
    if m.get("value") is None:
        raise InvalidInput("Missing value for required parameter 'value' of a metric")
    return MlflowMetric(key=_key(m.get("key"), "metric name"), value=_float(m.get("value"), "metric value"),
                        timestamp=_int(m, "timestamp", default_ts) or 0, step=_int(m, "step", 0) or 0,
                        model_id=_str(m, "model_id", required=False))


def _experiment_id(p: dict[str, Any], key: str = "experiment_id") -> int:
    raw = _str(p, key)
    assert raw is not None
    if not DIGITS.fullmatch(raw):
        raise NotFound(f"No Experiment with id={raw[:40]} exists")
    return int(raw)


def _page(p: dict[str, Any], default: int, most: int = MAX_RESULTS) -> tuple[int, int]:
    """(limit, offset) from max_results and page_token (an offset we gave out)."""
    limit = _int(p, "max_results", default) or default
    if limit < 1 or limit > most:
        raise InvalidInput(f"Invalid value {limit} for parameter 'max_results' supplied. It must be at most "
                           f"{most}")
    token = p.get("page_token") or "0"
    if not isinstance(token, str) or not DIGITS.fullmatch(token):
        raise InvalidInput(f"Invalid page token {str(token)[:50]!r}")
    return limit, int(token)


# -- MLflow's JSON views --------------------------------------------------------------------------


def _number(value: float) -> float | str:
    """A float as protobuf's JSON writes it: NaN and the infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _kv_list(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def experiment_view(e: MlflowExperiment) -> dict[str, Any]:
    return {"experiment_id": str(e.id), "name": e.name, "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage, "last_update_time": e.updated_ms, "creation_time": e.created_ms,
            "tags": _kv_list(e.tags)}


def metric_view(m: MlflowMetric) -> dict[str, Any]:
    out: dict[str, Any] = {"key": m.key, "value": _number(m.value), "timestamp": m.timestamp, "step": m.step}
    if m.model_id:
        out["model_id"] = m.model_id
    return out


def run_info_view(r: MlflowRun) -> dict[str, Any]:
    info: dict[str, Any] = {"run_id": r.run_id, "run_uuid": r.run_id, "run_name": r.name,
                            "experiment_id": str(r.experiment_id), "user_id": r.user_id, "status": r.status,
                            "artifact_uri": r.artifact_uri, "lifecycle_stage": r.lifecycle_stage}
    if r.start_ms is not None:
        info["start_time"] = r.start_ms
    if r.end_ms is not None:
        info["end_time"] = r.end_ms
    return info


def run_view(r: MlflowRun) -> dict[str, Any]:
    return {"info": run_info_view(r),
            "data": {"metrics": [metric_view(m) for m in r.metrics], "params": _kv_list(r.params),
                     "tags": _kv_list(r.tags)},
            "inputs": {},
            "outputs": {"model_outputs": [{"model_id": mid, "step": step} for mid, step in r.outputs]}}


def logged_model_view(m: MlflowLoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {"model_id": m.model_id, "experiment_id": str(m.experiment_id), "name": m.name,
                            "creation_timestamp_ms": m.created_ms, "last_updated_timestamp_ms": m.updated_ms,
                            "artifact_uri": m.artifact_uri, "status": m.status, "model_type": m.model_type,
                            "status_message": m.status_message, "tags": _kv_list(m.tags)}
    if m.source_run_id:
        info["source_run_id"] = m.source_run_id
    return {"info": info, "data": {"params": _kv_list(m.params), "metrics": [metric_view(x) for x in m.metrics]}}


def artifact_prefix(uri: str) -> str | None:
    """The path inside our artifact tree an ``mlflow-artifacts:`` URI names (None: another scheme).

    ``mlflow-artifacts:/1/abc/artifacts`` and ``mlflow-artifacts://host:port/1/abc/artifacts``
    both name ``1/abc/artifacts``."""
    if not uri.startswith(ARTIFACT_SCHEME):
        return None
    rest = uri[len(ARTIFACT_SCHEME):]
    if rest.startswith("//"):  # a host named: the path follows it
        rest = "/" + rest[2:].partition("/")[2]
    return rest.strip("/")


class Tracking:
    """The tracking subset over ``store.tracking``; replies are MLflow's JSON."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- experiments ------------------------------------------------------------------------------

    async def _experiment(self, experiment_id: int) -> MlflowExperiment:
        exp = await self.store.tracking.experiment(experiment_id)
        if exp is None:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        return exp

    async def get_experiment(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"experiment": experiment_view(await self._experiment(_experiment_id(p)))}

    async def get_experiment_by_name(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _str(p, "experiment_name")
        assert name is not None
        exp = await self.store.tracking.experiment_by_name(name)
        if exp is None:
            raise NotFound(f"Could not find experiment with name '{name}'")
        return {"experiment": experiment_view(exp)}

    async def create_experiment(self, p: dict[str, Any]) -> dict[str, Any]:
        """A new experiment; Conflict when the name is taken (MLflow's RESOURCE_ALREADY_EXISTS)."""
        name = _str(p, "name")
        assert name is not None
        if len(name) > 500 or "\x00" in name:
            raise InvalidInput(f"Invalid experiment name {name[:100]!r}")
        location = _str(p, "artifact_location", required=False)
        tags = _pairs(p.get("tags"), "tag", MAX_TAG_VALUE)
        exp = await self.store.tracking.create_experiment(name, location, tags, ARTIFACT_ROOT)
        if exp is None:
            raise Conflict(f"Experiment '{name}' already exists.")
        return {"experiment_id": str(exp.id)}

    # -- runs -------------------------------------------------------------------------------------

    async def _run(self, p: dict[str, Any], *, active: bool = False) -> MlflowRun:
        run_id = _str(p, "run_id", required=False) or _str(p, "run_uuid")
        assert run_id is not None
        run = await self.store.tracking.run(run_id)
        if run is None:
            raise NotFound(f"Run with id={run_id} not found")
        if active and run.lifecycle_stage != "active":
            raise InvalidInput(f"The run {run_id} must be in the 'active' state. Current state is "
                               f"{run.lifecycle_stage}.")
        return run

    async def create_run(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = await self._experiment(_experiment_id(p))
        if exp.lifecycle_stage != "active":
            raise InvalidInput(f"The experiment {exp.id} must be in the 'active' state. Current state is "
                               f"{exp.lifecycle_stage}.")
        tags = _pairs(p.get("tags"), "tag", MAX_TAG_VALUE)
        run_id = uuid.uuid4().hex
        name = _str(p, "run_name", required=False) or tags.get("mlflow.runName") or f"run-{run_id[:8]}"
        tags["mlflow.runName"] = name
        user = _str(p, "user_id", required=False, default="") or tags.get("mlflow.user", "")
        run = await self.store.tracking.create_run(
            run_id, exp.id, name, user, _int(p, "start_time", int(time.time() * 1000)), tags,
            f"{exp.artifact_location}/{run_id}/artifacts")
        return {"run": run_view(run)}

    async def get_run(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"run": run_view(await self._run(p))}

    async def update_run(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        status = _str(p, "status", required=False)
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInput(f"Invalid run status {status!r}: one of {', '.join(RUN_STATUSES)}")
        updated = await self.store.tracking.update_run(run.run_id, status=status, end_ms=_int(p, "end_time"),
                                                       name=_str(p, "run_name", required=False))
        assert updated is not None
        return {"run_info": run_info_view(updated)}

    async def _log(self, run: MlflowRun, metrics: list[MlflowMetric], params: dict[str, str],
                   tags: dict[str, str]) -> dict[str, Any]:
        conflicts = await self.store.tracking.log_batch(run.run_id, metrics, params, tags)
        if conflicts:
            key, old, new = conflicts[0]
            raise InvalidInput(f"Changing param values is not allowed. Param with key='{key}' was already logged "
                               f"with value='{old}' for run ID='{run.run_id}'. Attempted logging new value '{new}'.")
        return {}

    async def log_metric(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        return await self._log(run, [_metric(p, int(time.time() * 1000))], {}, {})

    async def log_param(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        return await self._log(run, [], {_key(p.get("key"), "param name"):
                                         _value(p.get("value"), "param value", MAX_PARAM_VALUE)}, {})

    async def set_tag(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        return await self._log(run, [], {}, {_key(p.get("key"), "tag name"):
                                             _value(p.get("value"), "tag value", MAX_TAG_VALUE)})

    async def delete_tag(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        key = _key(p.get("key"), "tag name")
        if not await self.store.tracking.delete_run_tag(run.run_id, key):
            raise NotFound(f"No tag with name: {key} in run with id {run.run_id}")
        return {}

    async def log_batch(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        raw_metrics = p.get("metrics") or []
        if not isinstance(raw_metrics, list):
            raise InvalidInput("Invalid value for 'metrics': it must be a list")
        if len(raw_metrics) > MAX_METRICS_PER_BATCH:
            raise InvalidInput(f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
                               f"Got {len(raw_metrics)} metrics.")
        for what in ("params", "tags"):
            if isinstance(p.get(what), list) and len(p[what]) > MAX_PARAMS_TAGS_PER_BATCH:
                raise InvalidInput(f"A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} "
                                   f"{what}. Got {len(p[what])} {what}.")
        now = int(time.time() * 1000)
        metrics = [_metric(m, now) for m in raw_metrics]
        return await self._log(run, metrics, _pairs(p.get("params"), "param", MAX_PARAM_VALUE),
                               _pairs(p.get("tags"), "tag", MAX_TAG_VALUE))

    async def metric_history(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p)
        key = _key(p.get("metric_key"), "metric name")
        limit, offset = _page(p, 25000, 25000)  # the client's own page size
        history = await self.store.tracking.metric_history(run.run_id, key)
        page = history[offset:offset + limit]
        out: dict[str, Any] = {"metrics": [metric_view(m) for m in page]}
        if offset + limit < len(history):
            out["next_page_token"] = str(offset + limit)
        return out

    async def log_outputs(self, p: dict[str, Any]) -> dict[str, Any]:
        run = await self._run(p, active=True)
        models = p.get("models") or []
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise InvalidInput("Invalid value for 'models': it must be a list of {model_id, step} objects")
        outputs = []
        for m in models:
            model_id = _str(m, "model_id")
            assert model_id is not None
            if await self.store.tracking.logged_model(model_id) is None:
                raise NotFound(f"Logged model with ID '{model_id}' not found.")
            outputs.append((model_id, _int(m, "step", 0) or 0))
        await self.store.tracking.add_outputs(run.run_id, outputs)
        return {}

    # -- logged models ----------------------------------------------------------------------------

    async def _logged_model(self, model_id: str | None, *, allow_deleted: bool = False) -> MlflowLoggedModel:
        model = await self.store.tracking.logged_model(model_id or "")
        if model is None or (model.lifecycle_stage != "active" and not allow_deleted):
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        return model

    async def create_logged_model(self, p: dict[str, Any]) -> dict[str, Any]:
        exp = await self._experiment(_experiment_id(p))
        source_run_id = _str(p, "source_run_id", required=False)
        if source_run_id is not None and await self.store.tracking.run(source_run_id) is None:
            raise NotFound(f"Run with id={source_run_id} not found")
        model_id = f"m-{uuid.uuid4().hex}"
        name = _str(p, "name", required=False) or f"model-{model_id[2:10]}"
        model = await self.store.tracking.create_logged_model(
            model_id, exp.id, name, f"{exp.artifact_location}/models/{model_id}/artifacts", source_run_id,
            _str(p, "model_type", required=False, default="") or "", _pairs(p.get("tags"), "tag", MAX_TAG_VALUE),
            _pairs(p.get("params"), "param", MAX_PARAM_VALUE))
        return {"model": logged_model_view(model)}

    async def get_logged_model(self, model_id: str, p: dict[str, Any]) -> dict[str, Any]:
        allow = str(p.get("allow_deleted", "")).lower() == "true"
        return {"model": logged_model_view(await self._logged_model(model_id, allow_deleted=allow))}

    async def finalize_logged_model(self, model_id: str, p: dict[str, Any]) -> dict[str, Any]:
        await self._logged_model(model_id)
        status = p.get("status")
        if isinstance(status, int) and not isinstance(status, bool) and 0 <= status < len(MODEL_STATUSES):
            status = MODEL_STATUSES[status]
        if status not in MODEL_STATUSES[1:]:
            raise InvalidInput(f"Invalid logged model status {str(status)[:50]!r}: one of "
                               f"{', '.join(MODEL_STATUSES[1:])}")
        model = await self.store.tracking.update_logged_model(model_id, status=status)
        assert model is not None
        return {"model": logged_model_view(model)}

    async def delete_logged_model(self, model_id: str) -> dict[str, Any]:
        await self._logged_model(model_id)
        await self.store.tracking.update_logged_model(model_id, stage="deleted")
        return {}

    async def set_logged_model_tags(self, model_id: str, p: dict[str, Any]) -> dict[str, Any]:
        await self._logged_model(model_id)
        await self.store.tracking.update_logged_model(model_id, tags=_pairs(p.get("tags"), "tag", MAX_TAG_VALUE))
        return {}

    async def delete_logged_model_tag(self, model_id: str, key: str) -> dict[str, Any]:
        model = await self._logged_model(model_id)
        if key not in model.tags:
            raise NotFound(f"No tag with key {key!r} found for logged model with ID '{model_id}'.")
        await self.store.tracking.update_logged_model(model_id, untag=key)
        return {}

    async def log_logged_model_params(self, model_id: str, p: dict[str, Any]) -> dict[str, Any]:
        await self._logged_model(model_id)
        params = _pairs(p.get("params"), "param", MAX_PARAM_VALUE)
        await self.store.tracking.update_logged_model(model_id, params=params)
        return {}

    async def search_logged_models(self, p: dict[str, Any]) -> dict[str, Any]:
        """Logged models of the experiments, newest first. The filter understands what the stock
        client itself sends (``name = '…'``, ``source_run_id = '…'``, joined by AND); any other
        filter is refused rather than ignored."""
        ids = p.get("experiment_ids") or []
        if not isinstance(ids, list) or not ids:
            raise InvalidInput("Missing value for required parameter 'experiment_ids'")
        experiments = [_experiment_id({"experiment_id": e}) for e in ids]
        name = run_id = None
        flt = p.get("filter") or ""
        if not isinstance(flt, str):
            raise InvalidInput("Invalid value for 'filter': it must be a string")
        flt = flt.strip()
        if flt:
            for clause in _split_and(flt):
                field, value = _equality(clause)
                if field in ("name", "attributes.name"):
                    name = value
                elif field in ("source_run_id", "attributes.source_run_id"):
                    run_id = value
                else:
                    raise InvalidInput(f"Unsupported filter {flt!r}: modelreg filters logged models by name and "
                                       "source_run_id (=)")
        limit, offset = _page(p, 100)
        models = await self.store.tracking.search_logged_models(experiments, name=name, source_run_id=run_id,
                                                                limit=limit + 1, offset=offset)
        out: dict[str, Any] = {"models": [logged_model_view(m) for m in models[:limit]]}
        if len(models) > limit:
            out["next_page_token"] = str(offset + limit)
        return out

    # -- for the registry (helper A's model-versions/create) -------------------------------------

    async def files_at(self, source: str) -> list[tuple[str, str, int]] | None:
        """Every stored artifact file a model-version source names, as (relpath under it, sha256,
        size); None when the source is not one of ours (another scheme, a registry URI).

        ``models:/m-<id>`` (a logged model's artifact location), ``runs:/<run id>/<path>`` and
        ``mlflow-artifacts:/<path>`` are ours. One naming nothing stored raises InvalidInput
        (NotFound for an unknown run), never an empty version."""
        prefix = await self._prefix_of(source)
        if prefix is None:
            return None
        if prefix.split("/", 1)[0] == REGISTRY_FOLDER:
            files = await self._registry_files(prefix)
        else:
            files = [(f.path, f.sha256, f.size) for f in await self.store.tracking.files_under(prefix)]
            if not files:
                single = await self.store.tracking.artifact(prefix)
                if single is not None:
                    files = [(prefix.rsplit("/", 1)[-1], single.sha256, single.size)]
        if not files:
            raise InvalidInput(f"No artifacts are stored at {source}: log the model's files there first")
        return files

    async def _prefix_of(self, source: str) -> str | None:
        if source.startswith("models:/m-") and "/" not in source[len("models:/"):].strip("/"):
            model = await self.store.tracking.logged_model(source[len("models:/"):].strip("/"))
            return artifact_prefix(model.artifact_uri) if model is not None else None
        if source.startswith("runs:/"):
            run_id, _, path = source[len("runs:/"):].strip("/").partition("/")
            run = await self.store.tracking.run(run_id)
            if run is None:
                raise NotFound(f"Run with id={run_id} not found (source {source})")
            base = artifact_prefix(run.artifact_uri)
            if base is None:
                return None
            return f"{base}/{path.strip('/')}" if path.strip("/") else base
        return artifact_prefix(source)

    async def _registry_files(self, prefix: str) -> list[tuple[str, str, int]]:
        parts = prefix.split("/")
        if len(parts) < 3 or not DIGITS.fullmatch(parts[2]):
            raise InvalidInput(f"mlflow-artifacts:/{prefix} names no registry version (_registry/<model>/<version>)")
        _, files = await self.store.catalog.resolve_with_files(f"{parts[1]}@{parts[2]}")
        sub = "/".join(parts[3:])
        cut = len(sub) + 1 if sub else 0
        return [(f["path"][cut:], f["sha256"], f["size"]) for f in files
                if not sub or f["path"].startswith(sub + "/")]

    async def run_facts(self, run_id: str) -> RunFacts | None:
        """What a version takes from its MLflow run: experiment name, times (seconds), params,
        latest metrics (finite values only: our metrics are numbers), user. None: no such run."""
        found = await self.store.tracking.run_with_experiment(run_id)
        if found is None:
            return None
        run, experiment = found
        return RunFacts(experiment=experiment or None,
                        started_at=run.start_ms / 1000 if run.start_ms is not None else None,
                        ended_at=run.end_ms / 1000 if run.end_ms is not None else None,
                        params=dict(run.params),
                        metrics={m.key: m.value for m in run.metrics if math.isfinite(m.value)},
                        user=run.user_id)


def _split_and(flt: str) -> list[str]:
    out, current, quote = [], "", ""
    tokens = flt.split(" ")
    for token in tokens:
        if not quote and token.upper() == "AND":
            out.append(current.strip())
            current = ""
            continue
        current += token + " "
        for ch in token:
            if ch in "'\"" and (not quote or quote == ch):
                quote = "" if quote else ch
    out.append(current.strip())
    return [c for c in out if c]


def _equality(clause: str) -> tuple[str, str]:
    field, sep, value = clause.partition("=")
    value = value.strip()
    if not sep or field.endswith(("!", "<", ">")) or len(value) < 2 or value[0] != value[-1] or value[0] not in "'\"":
        raise InvalidInput(f"Unsupported filter clause {clause!r}: modelreg filters logged models by "
                           "name and source_run_id (=)")
    return field.strip().strip("`"), value[1:-1]
