"""The tracking subset through the stock MLflow client (issue 10): experiments, runs, params,
metrics, tags, log-batch, logged models; MLflow's errors; nothing else answers a 5xx."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException, RestException  # noqa: E402


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.error_code


def test_default_experiment_and_create_get_by_name(client):
    default = client.get_experiment("0")
    assert default.name == "Default" and default.lifecycle_stage == "active"
    assert default.artifact_location == "mlflow-artifacts:/0"
    exp_id = client.create_experiment("fraud-training", tags={"team": "risk"})
    assert exp_id.isdigit() and exp_id != "0"
    exp = client.get_experiment_by_name("fraud-training")
    assert exp.experiment_id == exp_id and exp.tags == {"team": "risk"}
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert exp.creation_time <= int(time.time() * 1000) + 1000
    assert client.get_experiment_by_name("no-such-experiment") is None
    with pytest.raises(MlflowException) as exc:
        client.create_experiment("fraud-training")
    assert _code(exc) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as exc:
        client.get_experiment("987654")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_run_params_metrics_tags_through_the_client(client):
    exp_id = client.create_experiment("runs")
    run = client.create_run(exp_id, run_name="first", tags={"owner": "ana"})
    run_id = run.info.run_id
    assert len(run_id) == 32 and int(run_id, 16) >= 0
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    assert run.info.status == "RUNNING" and run.info.run_name == "first"
    client.log_param(run_id, "C", "0.5")
    client.log_param(run_id, "C", "0.5")  # the same value again is fine
    with pytest.raises(MlflowException) as exc:
        client.log_param(run_id, "C", "2")
    assert _code(exc) == "INVALID_PARAMETER_VALUE" and "Changing param values is not allowed" in exc.value.message
    for step, value in enumerate([0.7, 0.8, 0.91]):
        client.log_metric(run_id, "auc", value, timestamp=1_700_000_000_000 + step, step=step)
    client.log_metric(run_id, "loss", math.nan, step=0)
    client.set_tag(run_id, "stage", "dev")
    client.log_batch(run_id, metrics=[Metric("f1", 0.5, 1_700_000_000_500, 0)], params=[Param("penalty", "l2")],
                     tags=[RunTag("stage", "candidate")])
    client.delete_tag(run_id, "owner")
    client.set_terminated(run_id, "FINISHED", end_time=1_700_000_009_000)

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time == 1_700_000_009_000
    assert got.data.params == {"C": "0.5", "penalty": "l2"}
    assert got.data.metrics["auc"] == 0.91 and got.data.metrics["f1"] == 0.5 and math.isnan(got.data.metrics["loss"])
    assert got.data.tags["stage"] == "candidate" and "owner" not in got.data.tags
    assert got.data.tags["mlflow.runName"] == "first"
    history = client.get_metric_history(run_id, "auc")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (0, 0.7, 1_700_000_000_000), (1, 0.8, 1_700_000_000_001), (2, 0.91, 1_700_000_000_002)]


def test_fluent_api_logs_to_a_named_experiment(mlflow_env):
    mlflow.set_experiment("fluent")
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": 0.01, "depth": 3})
        mlflow.log_metrics({"auc": 0.93, "loss": 0.2})
        mlflow.set_tags({"k": "v"})
    client = mlflow.MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time >= got.info.start_time
    assert got.data.params == {"lr": "0.01", "depth": "3"}
    assert got.data.metrics == {"auc": 0.93, "loss": 0.2}
    assert got.data.tags["k"] == "v"
    exp = client.get_experiment_by_name("fluent")
    assert got.info.experiment_id == exp.experiment_id


def test_logged_models_create_finalize_tag_search_delete(client):
    exp_id = client.create_experiment("models")
    run = client.create_run(exp_id)
    model = client.create_logged_model(exp_id, name="clf", source_run_id=run.info.run_id,
                                       params={"C": "1"}, tags={"a": "1"}, model_type="sklearn")
    assert model.model_id.startswith("m-") and len(model.model_id) == 34
    assert model.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{model.model_id}/artifacts"
    assert model.status == LoggedModelStatus.PENDING and model.params == {"C": "1"} and model.tags == {"a": "1"}
    done = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert done.status == LoggedModelStatus.READY
    client.set_logged_model_tags(model.model_id, {"b": "2"})
    client.delete_logged_model_tag(model.model_id, "a")
    got = client.get_logged_model(model.model_id)
    assert got.tags == {"b": "2"} and got.name == "clf" and got.source_run_id == run.info.run_id
    other = client.create_logged_model(exp_id, name="other")
    found = client.search_logged_models(experiment_ids=[exp_id])
    assert [m.model_id for m in found] == [other.model_id, model.model_id]
    named = client.search_logged_models(experiment_ids=[exp_id], filter_string="name = 'clf'")
    assert [m.model_id for m in named] == [model.model_id]
    page = client.search_logged_models(experiment_ids=[exp_id], max_results=1)
    assert len(page) == 1 and page.token
    rest = client.search_logged_models(experiment_ids=[exp_id], max_results=1, page_token=page.token)
    assert [m.model_id for m in rest] == [model.model_id]
    client.delete_logged_model(other.model_id)
    with pytest.raises(MlflowException) as exc:
        client.get_logged_model(other.model_id)
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    assert [m.model_id for m in client.search_logged_models(experiment_ids=[exp_id])] == [model.model_id]


def test_errors_are_mlflow_errors(client):
    with pytest.raises(MlflowException) as exc:
        client.get_run("0" * 32)
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        client.create_run("424242")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    run = client.create_run("0")
    with pytest.raises(MlflowException) as exc:
        client.log_param(run.info.run_id, "k" * 300, "v")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.log_param(run.info.run_id, "../escape", "v")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.get_logged_model("m-" + "0" * 32)
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_unknown_tracking_endpoints_answer_endpoint_not_found(client, mlflow_env):
    """The client raises MLflow's ENDPOINT_NOT_FOUND for what the subset leaves out, never a 5xx."""
    with pytest.raises(RestException) as exc:
        client.search_runs(["0"])
    assert _code(exc) == "ENDPOINT_NOT_FOUND"
    with pytest.raises(RestException) as exc:
        client.delete_experiment("0")
    assert _code(exc) == "ENDPOINT_NOT_FOUND"
    daemon = mlflow_env
    run_id = client.create_run("0").info.run_id
    for method, path, body in [("POST", "/api/2.0/mlflow/runs/create", b"[1,2]"),
                               ("POST", "/api/2.0/mlflow/runs/log-batch", b"{not json"),
                               ("POST", "/api/2.0/mlflow/runs/log-metric", b'{"run_id": 5, "key": {}}'),
                               ("GET", "/api/2.0/mlflow/experiments/get?experiment_id=abc", None),
                               ("PATCH", "/api/2.0/mlflow/logged-models/m-x", b'{"status": [1]}'),
                               ("GET", "/api/2.0/mlflow/runs/nonsense", None),
                               ("POST", "/api/2.0/mlflow/runs/log-metric",
                                json.dumps({"run_id": run_id, "key": "k", "value": 10**400, "timestamp": 1}).encode()),
                               ("POST", "/api/2.0/mlflow/runs/log-metric",
                                json.dumps({"run_id": run_id, "key": "k", "value": 1, "timestamp": 10**30}).encode()),
                               ("POST", "/api/2.0/mlflow/runs/log-batch",
                                json.dumps({"run_id": run_id, "params": "x", "tags": [1]}).encode()),
                               ("POST", "/api/2.0/mlflow/logged-models/search",
                                json.dumps({"experiment_ids": ["0"], "filter": 5}).encode()),
                               ("POST", "/api/2.0/mlflow/logged-models/search",
                                json.dumps({"experiment_ids": [{}], "max_results": -1}).encode()),
                               ("POST", "/api/2.0/mlflow/runs/create", json.dumps({"experiment_id": [1]}).encode()),
                               ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/0/x",
                                json.dumps({"path": "f", "upload_id": 7, "parts": [{"etag": 3}]}).encode())]:
        req = urllib.request.Request(daemon.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {daemon.token}",
                                              "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert 400 <= err.value.code < 500, (path, err.value.code)
        assert err.value.headers["Content-Type"].startswith("application/json")
        assert "error_code" in json.loads(err.value.read())


def test_server_info_advertises_proxied_multipart_uploads(mlflow_env):
    daemon = mlflow_env
    req = urllib.request.Request(daemon.url + "/api/3.0/mlflow/server-info",
                                 headers={"Authorization": f"Bearer {daemon.token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        info = json.loads(r.read())
    assert info["multipart_uploads_enabled"] is True and info["multipart_downloads_enabled"] is False


async def test_what_the_registry_asks_of_a_run(tmp_path):
    """files_at and run_facts (services/mlflow/tracking.py) on a real SQLite store:
    what model-versions/create turns into a version's files and lineage."""
    from modelreg.daemon.services.mlflow.tracking import Tracking
    from modelreg.daemon.store import open_store
    from modelreg.shared.errors import InvalidInput, NotFound

    store = open_store(None, tmp_path)
    await store.open()
    try:
        t = Tracking(store)
        exp = (await t.create_experiment({"name": "fraud-training"}))["experiment_id"]
        run = (await t.create_run({"experiment_id": exp, "start_time": 1_700_000_000_000, "user_id": "ana"}))["run"]
        run_id = run["info"]["run_id"]
        await t.log_batch({"run_id": run_id, "params": [{"key": "C", "value": "0.5"}],
                           "metrics": [{"key": "auc", "value": 0.9, "timestamp": 1, "step": 0},
                                       {"key": "auc", "value": 0.93, "timestamp": 2, "step": 1},
                                       {"key": "loss", "value": "NaN", "timestamp": 2, "step": 1}]})
        await t.update_run({"run_id": run_id, "status": "FINISHED", "end_time": 1_700_000_060_000})
        model = (await t.create_logged_model({"experiment_id": exp, "name": "model", "source_run_id": run_id}))["model"]
        mid = model["info"]["model_id"]
        base = f"{exp}/models/{mid}/artifacts"
        for path, sha, size in [(f"{base}/MLmodel", "a" * 64, 10), (f"{base}/sub/model.pkl", "b" * 64, 20),
                                (f"{exp}/{run_id}/artifacts/extra/notes.txt", "c" * 64, 3)]:
            assert await store.tracking.put_artifact(path, sha, size) is None

        want = [("MLmodel", "a" * 64, 10), ("sub/model.pkl", "b" * 64, 20)]
        assert await t.files_at(f"models:/{mid}") == want
        assert await t.files_at(f"mlflow-artifacts:/{base}") == want
        assert await t.files_at(f"mlflow-artifacts://127.0.0.1:7311/{base}/") == want
        assert await t.files_at(f"runs:/{run_id}/extra") == [("notes.txt", "c" * 64, 3)]
        assert await t.files_at(f"runs:/{run_id}/extra/notes.txt") == [("notes.txt", "c" * 64, 3)]
        for foreign in ("s3://bucket/model", "models:/fraud/1", "models:/fraud@champion", "/tmp/model", "file:///x"):
            assert await t.files_at(foreign) is None, foreign
        with pytest.raises(InvalidInput, match="nothing-here"):
            await t.files_at(f"runs:/{run_id}/nothing-here")
        with pytest.raises(NotFound):
            await t.files_at("runs:/" + "f" * 32 + "/model")

        facts = await t.run_facts(run_id)
        assert facts.experiment == "fraud-training" and facts.user == "ana"
        assert facts.started_at == 1_700_000_000 and facts.ended_at == 1_700_000_060
        assert facts.params == {"C": "0.5"} and facts.metrics == {"auc": 0.93}  # NaN is no metric of ours
        assert await t.run_facts("0" * 32) is None
    finally:
        await store.close()
