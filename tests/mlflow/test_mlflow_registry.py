"""The model registry through the stock ``MlflowClient`` against a real daemon (issue 10,
acceptance 1): every registry call with MLflow's documented results, and the version in
``modelreg versions`` afterwards (one registry, not two)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # stages are deprecated in MLflow 2.9+


def _error(call, *args, **kwargs) -> MlflowException:
    with pytest.raises(MlflowException) as exc:
        call(*args, **kwargs)
    return exc.value


def _refs(client, name: str, n: int, **kwargs) -> list:
    return [client.create_model_version(name, f"s3://bucket/{name}/{i}", **kwargs) for i in range(n)]


def test_registered_model_create_get_update_rename_delete(client, modelreg) -> None:
    created = client.create_registered_model("fraud", tags={"team": "risk"}, description="fraud scorer")
    assert (created.name, created.description, created.tags) == ("fraud", "fraud scorer", {"team": "risk"})
    assert created.creation_timestamp > 1_600_000_000_000  # milliseconds
    got = client.get_registered_model("fraud")
    assert got.tags == {"team": "risk"} and got.latest_versions == [] and got.aliases == {}

    updated = client.update_registered_model("fraud", description="v2 scorer")
    assert updated.description == "v2 scorer"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp

    client.create_model_version("fraud", "s3://bucket/fraud/1")
    client.rename_registered_model("fraud", "fraud-detector")
    assert client.get_registered_model("fraud-detector").description == "v2 scorer"
    assert client.get_model_version("fraud-detector", "1").name == "fraud-detector"
    assert _error(client.get_registered_model, "fraud").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "fraud-detector" in modelreg("models").stdout

    client.delete_registered_model("fraud-detector")
    err = _error(client.get_registered_model, "fraud-detector")
    assert err.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Registered Model with name=fraud-detector not found" in err.message
    assert [m.name for m in client.search_registered_models()] == []


def test_model_errors_have_mlflows_codes(client) -> None:
    client.create_registered_model("fraud")
    err = _error(client.create_registered_model, "fraud")
    assert err.error_code == "RESOURCE_ALREADY_EXISTS" and "Registered Model (name=fraud) already exists." in err.message
    client.create_registered_model("other")
    assert _error(client.rename_registered_model, "other", "fraud").error_code == "RESOURCE_ALREADY_EXISTS"
    assert _error(client.get_registered_model, "nope").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _error(client.update_registered_model, "nope", "x").error_code == "RESOURCE_DOES_NOT_EXIST"
    err = _error(client.create_registered_model, "a/b")
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "cannot contain '/' or ':'" in err.message
    err = _error(client.create_registered_model, "has space")  # MLflow takes it; our names do not
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "invalid model name" in err.message
    assert _error(client.get_model_version, "fraud", "7").error_code == "RESOURCE_DOES_NOT_EXIST"
    err = _error(client.create_model_version, "ghost", "s3://b/m")
    assert err.error_code == "RESOURCE_DOES_NOT_EXIST" and "name=ghost" in err.message


def test_tags_on_models_and_versions(client) -> None:
    client.create_registered_model("fraud")
    client.set_registered_model_tag("fraud", "team", "risk")
    client.set_registered_model_tag("fraud", "tier", "1")
    client.delete_registered_model_tag("fraud", "tier")
    assert client.get_registered_model("fraud").tags == {"team": "risk"}

    v = client.create_model_version("fraud", "s3://bucket/fraud/1", tags={"data": "2024-01"})
    assert v.tags == {"data": "2024-01"}
    client.set_model_version_tag("fraud", "1", "validated", "yes")
    client.delete_model_version_tag("fraud", "1", "data")
    assert client.get_model_version("fraud", "1").tags == {"validated": "yes"}
    assert _error(client.set_model_version_tag, "fraud", "9", "k", "v").error_code == "RESOURCE_DOES_NOT_EXIST"


def test_reference_version_for_an_external_uri(client, modelreg) -> None:
    client.create_registered_model("fraud")
    v = client.create_model_version("fraud", "s3://bucket/models/fraud", description="from s3")
    assert (v.version, v.status, v.current_stage, v.source) == ("1", "READY", "None", "s3://bucket/models/fraud")
    assert v.description == "from s3" and v.user_id
    got = client.get_model_version("fraud", "1")
    assert (got.version, got.source, got.status) == ("1", "s3://bucket/models/fraud", "READY")
    assert client.get_model_version_download_uri("fraud", "1") == "s3://bucket/models/fraud"
    for uri in ("gs://b/m", "https://example.com/m.tar.gz", "dbfs:/models/m", "wasbs://c@a.blob.core.windows.net/m"):
        assert client.create_model_version("fraud", uri).status == "READY"
    listed = modelreg("versions", "fraud", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {item["version"] for item in json.loads(listed.stdout)} == {1, 2, 3, 4, 5}
    shown = modelreg("show", "fraud@1")
    assert shown.returncode == 0 and "s3://bucket/models/fraud" in shown.stdout


def test_update_a_version_and_our_delete_rules(client) -> None:
    client.create_registered_model("fraud")
    _refs(client, "fraud", 2)
    updated = client.update_model_version("fraud", "1", description="retrained on May data")
    assert updated.description == "retrained on May data"
    assert client.get_model_version("fraud", "1").description == "retrained on May data"
    assert updated.last_updated_timestamp >= updated.creation_timestamp
    client.transition_model_version_stage("fraud", "2", "Production")
    err = _error(client.delete_model_version, "fraud", "2")  # ours: production is not deleted by accident
    assert err.error_code == "RESOURCE_CONFLICT" and "production" in err.message
    err = _error(client.delete_registered_model, "fraud")
    assert err.error_code == "RESOURCE_CONFLICT" and "v2 (production)" in err.message
    assert client.get_model_version("fraud", "2").current_stage == "Production"


def test_aliases_set_get_delete(client) -> None:
    client.create_registered_model("fraud")
    _refs(client, "fraud", 2)
    client.set_registered_model_alias("fraud", "champion", "1")
    client.set_registered_model_alias("fraud", "challenger", "2")
    assert client.get_model_version_by_alias("fraud", "champion").version == "1"
    assert client.get_registered_model("fraud").aliases == {"champion": "1", "challenger": "2"}
    assert client.get_model_version("fraud", "1").aliases == ["champion"]
    client.set_registered_model_alias("fraud", "champion", "2")  # moving it
    assert sorted(client.get_model_version("fraud", "2").aliases) == ["challenger", "champion"]
    client.delete_registered_model_alias("fraud", "challenger")
    client.delete_registered_model_alias("fraud", "challenger")  # gone already: no error, as MLflow
    assert client.get_registered_model("fraud").aliases == {"champion": "2"}
    err = _error(client.get_model_version_by_alias, "fraud", "challenger")
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "alias challenger not found" in err.message
    assert _error(client.set_registered_model_alias, "fraud", "latest", "1").error_code == "INVALID_PARAMETER_VALUE"
    assert _error(client.set_registered_model_alias, "fraud", "v3", "1").error_code == "INVALID_PARAMETER_VALUE"
    assert _error(client.set_registered_model_alias, "fraud", "x", "9").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_model_version_by_alias("fraud", "latest").version == "2"


def test_transitions_with_and_without_archive_existing_versions(client) -> None:
    client.create_registered_model("fraud")
    _refs(client, "fraud", 4)
    assert client.transition_model_version_stage("fraud", "1", "production").current_stage == "Production"
    # Our invariant: one production version; the old one is archived even without the flag.
    assert client.transition_model_version_stage("fraud", "2", "PRODUCTION",
                                                 archive_existing_versions=False).current_stage == "Production"
    assert client.get_model_version("fraud", "1").current_stage == "Archived"

    client.transition_model_version_stage("fraud", "3", "Staging")
    client.transition_model_version_stage("fraud", "4", "staging", archive_existing_versions=False)
    assert client.get_model_version("fraud", "3").current_stage == "Staging"  # both stay in staging
    client.transition_model_version_stage("fraud", "1", "staging", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions("name = 'fraud'")}
    assert stages == {"1": "Staging", "2": "Production", "3": "Archived", "4": "Archived"}

    latest = {v.current_stage: v.version for v in client.get_latest_versions("fraud")}
    assert latest == {"Staging": "1", "Production": "2", "Archived": "4"}
    assert [v.version for v in client.get_latest_versions("fraud", stages=["Production"])] == ["2"]
    assert [v.version for v in client.get_registered_model("fraud").latest_versions if
            v.current_stage == "Archived"] == ["4"]
    err = _error(client.transition_model_version_stage, "fraud", "2", "shipped")
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "Invalid Model Version stage: shipped" in err.message
    err = _error(client.transition_model_version_stage, "fraud", "2", "Archived", archive_existing_versions=True)
    assert err.error_code == "INVALID_PARAMETER_VALUE"


def test_a_production_gate_refuses_an_mlflow_transition(client, modelreg) -> None:
    client.create_registered_model("fraud")
    _refs(client, "fraud", 1)
    added = modelreg("gate", "add", "fraud", "--stage", "production", "auc >= 0.9")
    assert added.returncode == 0, added.stderr
    err = _error(client.transition_model_version_stage, "fraud", "1", "Production")
    assert err.error_code == "PERMISSION_DENIED"
    assert "auc >= 0.9" in err.message
    assert client.get_model_version("fraud", "1").current_stage == "None"


def test_deleted_versions_vanish_and_numbers_are_not_reused(client, modelreg) -> None:
    client.create_registered_model("fraud")
    _refs(client, "fraud", 3)
    client.delete_model_version("fraud", "3")
    assert _error(client.get_model_version, "fraud", "3").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert sorted(v.version for v in client.search_model_versions("name = 'fraud'")) == ["1", "2"]
    assert client.create_model_version("fraud", "s3://bucket/again").version == "4"
    listed = json.loads(modelreg("versions", "fraud", "--json").stdout)
    assert sorted(item["version"] for item in listed) == [1, 2, 4]


def test_search_registered_models_filters_order_and_pages(client) -> None:
    names = [f"model-{i:02d}" for i in range(23)] + ["Fraud", "fraud_x", "fraudy"]
    for i, name in enumerate(names):
        client.create_registered_model(name, tags={"team": "risk" if i % 2 else "growth"})
    found = {m.name for m in client.search_registered_models("name LIKE 'fraud%'")}
    assert found == {"fraud_x", "fraudy"}  # LIKE is case-sensitive
    assert {m.name for m in client.search_registered_models("name ILIKE 'fraud%'")} == {"Fraud", "fraud_x", "fraudy"}
    assert {m.name for m in client.search_registered_models("name LIKE 'fraud_x'")} == {"fraud_x"}
    assert {m.name for m in client.search_registered_models("name = 'fraud'")} == set()
    risk = {m.name for m in client.search_registered_models("tags.team = 'risk' AND name LIKE 'model-%'")}
    assert risk == {n for i, n in enumerate(names[:23]) if i % 2}

    seen, token, pages = [], None, 0
    while True:
        page = client.search_registered_models(max_results=5, page_token=token)
        seen += [m.name for m in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == sorted(names) and pages == 6  # default order: name ascending, no dup, no miss

    newest = client.search_registered_models(order_by=["last_updated_timestamp DESC"], max_results=1)
    assert newest[0].name == "fraudy"
    assert [m.name for m in client.search_registered_models(order_by=["name DESC"], max_results=2)] == \
        ["model-22", "model-21"]
    err = _error(client.search_registered_models, max_results=1001)
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "It must be at most 1000" in err.message
    err = _error(client.search_registered_models, "name = 'a' OR name = 'b'")
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "Invalid clause(s) in filter string: OR" in err.message
    assert _error(client.search_registered_models, order_by=["nope"]).error_code == "INVALID_PARAMETER_VALUE"
    assert _error(client.search_registered_models, page_token="garbage!").error_code == "INVALID_PARAMETER_VALUE"


def test_search_model_versions_filters_order_and_pages(client) -> None:
    client.create_registered_model("fraud")
    client.create_registered_model("churn")
    for i in range(12):
        client.create_model_version("fraud", f"s3://bucket/fraud/{i}", run_id=f"run{i % 3}",
                                    tags={"parity": "even" if i % 2 == 0 else "odd"})
    _refs(client, "churn", 3)

    assert len(client.search_model_versions("name = 'fraud'")) == 12
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'fraud' AND version_number > 9")) \
        == [10, 11, 12]
    assert sorted(int(v.version) for v in client.search_model_versions(
        "name='fraud' AND version_number <= 2")) == [1, 2]
    by_run = client.search_model_versions("run_id = 'run1'")
    assert sorted(int(v.version) for v in by_run) == [2, 5, 8, 11] and {v.run_id for v in by_run} == {"run1"}
    assert len(client.search_model_versions("run_id IN ('run0', 'run2')")) == 8
    assert len(client.search_model_versions("name = 'fraud' AND run_id != 'run0'")) == 8
    assert len(client.search_model_versions("tags.parity = 'even' AND name = 'fraud'")) == 6
    assert len(client.search_model_versions("tags.`parity` LIKE 'o%'")) == 6
    assert [v.source for v in client.search_model_versions("source_path = 's3://bucket/fraud/3'")] == \
        ["s3://bucket/fraud/3"]
    assert len(client.search_model_versions("source_path LIKE 's3://bucket/churn/%'")) == 3

    ordered = client.search_model_versions("name = 'fraud'", order_by=["version_number ASC"])
    assert [int(v.version) for v in ordered] == list(range(1, 13))
    default = client.search_model_versions()
    assert int(default[0].version) == 3 and default[0].name == "churn"  # newest update first

    seen, token = [], None
    while True:
        page = client.search_model_versions("name = 'fraud'", max_results=5, page_token=token,
                                            order_by=["version_number DESC"])
        seen += [int(v.version) for v in page]
        token = page.token
        if not token:
            break
    assert seen == list(range(12, 0, -1))

    err = _error(client.search_model_versions, "version_number LIKE '1%'")
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "Invalid comparator for attribute version_number" in err.message
    err = _error(client.search_model_versions, "metric.auc > 1")
    assert err.error_code == "INVALID_PARAMETER_VALUE" and "Invalid entity type 'metric'" in err.message


def test_a_local_path_is_refused_without_an_allowed_root(client, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pkl").write_bytes(b"x" * 10)
    client.create_registered_model("fraud")
    for source in (str(model), f"file://{model}"):
        err = _error(client.create_model_version, "fraud", source)
        assert err.error_code == "INVALID_PARAMETER_VALUE" and "MODELREG_MLFLOW_ROOTS" in err.message
    assert client.search_model_versions("name = 'fraud'") == []


def test_a_local_path_inside_an_allowed_root_is_registered(rooted_client, mlflow_root: Path, tmp_path: Path,
                                                           modelreg) -> None:
    client = rooted_client
    model = mlflow_root / "fraud-model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "weights.bin").write_bytes(os.urandom(4096))
    client.create_registered_model("fraud")
    v = client.create_model_version("fraud", f"file://{model}")  # a job; the client waits for READY
    assert (v.version, v.status) == ("1", "PENDING_REGISTRATION")
    assert client.get_model_version("fraud", "1").status == "READY"
    assert client.get_model_version_download_uri("fraud", "1") == "mlflow-artifacts:/_registry/fraud/1"
    shown = json.loads(modelreg("show", "fraud@1", "--json").stdout)
    assert sorted(f["path"] for f in shown["files"]) == ["MLmodel", "weights.bin"]

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"secret")
    (mlflow_root / "link").symlink_to(outside)
    for source in (str(outside), f"{mlflow_root}/../outside", f"file://{mlflow_root}/%2e%2e/outside",
                   str(mlflow_root / "link"), "relative/path"):
        err = _error(client.create_model_version, "fraud", source)
        assert err.error_code == "INVALID_PARAMETER_VALUE", source
    assert [x.version for x in client.search_model_versions("name = 'fraud'")] == ["1"]


ROUTES = [
    ("POST", "registered-models/create", {"name": "fuzz", "description": "d", "tags": [{"key": "k", "value": "v"}]}),
    ("GET", "registered-models/get", {"name": "fuzz"}),
    ("POST", "registered-models/rename", {"name": "fuzz", "new_name": "fuzz2"}),
    ("PATCH", "registered-models/update", {"name": "fuzz", "description": "d"}),
    ("GET", "registered-models/search", {"filter": "name = 'fuzz'", "max_results": 5, "order_by": ["name"],
                                         "page_token": ""}),
    ("POST", "registered-models/get-latest-versions", {"name": "fuzz", "stages": ["None"]}),
    ("POST", "registered-models/set-tag", {"name": "fuzz", "key": "k", "value": "v"}),
    ("DELETE", "registered-models/delete-tag", {"name": "fuzz", "key": "k"}),
    ("POST", "registered-models/alias", {"name": "fuzz", "alias": "champion", "version": "1"}),
    ("GET", "registered-models/alias", {"name": "fuzz", "alias": "champion"}),
    ("DELETE", "registered-models/alias", {"name": "fuzz", "alias": "champion"}),
    ("POST", "model-versions/create", {"name": "fuzz", "source": "s3://b/m", "run_id": "r", "tags": [],
                                       "description": "d", "run_link": "l", "model_id": "m-1"}),
    ("GET", "model-versions/get", {"name": "fuzz", "version": "1"}),
    ("PATCH", "model-versions/update", {"name": "fuzz", "version": "1", "description": "d"}),
    ("POST", "model-versions/transition-stage", {"name": "fuzz", "version": "1", "stage": "Staging",
                                                 "archive_existing_versions": False}),
    ("GET", "model-versions/get-download-uri", {"name": "fuzz", "version": "1"}),
    ("GET", "model-versions/search", {"filter": "name = 'fuzz'", "max_results": 5, "order_by": ["name"]}),
    ("POST", "model-versions/set-tag", {"name": "fuzz", "version": "1", "key": "k", "value": "v"}),
    ("DELETE", "model-versions/delete-tag", {"name": "fuzz", "version": "1", "key": "k"}),
    ("DELETE", "model-versions/delete", {"name": "fuzz", "version": "1"}),
    ("DELETE", "registered-models/delete", {"name": "fuzz"}),
]
BAD = [None, 7, -1, 2.5, True, [], {}, ["a", 3], {"k": "v"}, "", "x" * 5000, "\x00", "'", "../../etc",
       "99999999999999999999999999", "name = 'a' OR", "tags.`", "file:///etc/passwd"]


def test_no_input_gives_a_5xx(mlflow_env, client) -> None:
    """Every registry route, each parameter given every wrong type or shape, against a model
    and version that exist (so the checks after the lookups run too): MLflow's error shape
    with a 4xx, never a 5xx or a traceback."""
    import requests

    client.create_registered_model("fuzz")
    client.create_model_version("fuzz", "s3://b/m")
    client.set_registered_model_alias("fuzz", "champion", "1")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {mlflow_env.token}"
    base = f"{mlflow_env.url}/api/2.0/mlflow"
    for method, path, good in ROUTES:
        for key in good:
            for bad in BAD:
                body = {**good, key: bad}
                if method == "GET":
                    query = {k: v for k, v in body.items() if v is not None and not isinstance(v, dict)}
                    r = session.get(f"{base}/{path}", params=query)
                else:
                    r = session.request(method, f"{base}/{path}", json=body)
                assert r.status_code < 500, (method, path, key, bad, r.text[:300])
                if r.status_code >= 400:
                    assert r.json()["error_code"], (method, path, key, bad)


def test_a_runs_source_becomes_an_upload_with_the_runs_lineage(client, modelreg, tmp_path: Path) -> None:
    """``runs:/<id>/model``: the run's stored artifacts are the version's files, the run its lineage
    run (params as hyperparameters and params, latest metrics as offline metrics)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(os.urandom(2048))
    experiment = client.create_experiment("fraud-training")
    run = client.create_run(experiment)
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.01")
    client.log_metric(run_id, "auc", 0.91)
    client.log_metric(run_id, "auc", 0.95)
    client.log_artifacts(run_id, str(folder), artifact_path="model")
    client.set_terminated(run_id)
    client.create_registered_model("fraud")
    v = client.create_model_version("fraud", f"runs:/{run_id}/model", run_id=run_id)
    assert (v.version, v.status, v.run_id) == ("1", "READY", run_id)
    assert [x.version for x in client.search_model_versions(f"run_id = '{run_id}'")] == ["1"]
    assert client.get_model_version_download_uri("fraud", "1") == "mlflow-artifacts:/_registry/fraud/1"
    shown = json.loads(modelreg("show", "fraud@1", "--json", check=True).stdout)
    assert sorted(f["path"] for f in shown["files"]) == ["MLmodel", "weights.bin"]
    assert shown["metrics"] == {"auc": 0.95} and shown["params"] == {"lr": "0.01"}
    assert shown["lineage"]["run"]["id"] == run_id and shown["lineage"]["run"]["experiment"] == "fraud-training"
    assert shown["lineage"]["run"]["hyperparameters"] == {"lr": "0.01"}
    err = _error(client.create_model_version, "fraud", "runs:/0123456789abcdef0123456789abcdef/model")
    assert err.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_copy_model_version_shares_the_files(rooted_client, mlflow_root: Path, modelreg) -> None:
    client = rooted_client
    model = mlflow_root / "m"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(1024))
    client.create_registered_model("fraud")
    client.create_model_version("fraud", str(model))
    client.create_model_version("fraud", "s3://bucket/fraud/2")
    copy = client.copy_model_version("models:/fraud/1", "fraud-prod")
    assert (copy.name, copy.version, copy.source, copy.status) == ("fraud-prod", "1", "models:/fraud/1", "READY")
    original = json.loads(modelreg("show", "fraud@1", "--json", check=True).stdout)
    copied = json.loads(modelreg("show", "fraud-prod@1", "--json", check=True).stdout)
    assert copied["files"] == original["files"] and copied["content_digest"] == original["content_digest"]
    assert client.get_model_version_download_uri("fraud-prod", "1") == "mlflow-artifacts:/_registry/fraud-prod/1"
    ref = client.copy_model_version("models:/fraud/2", "fraud-prod")  # a reference stays a reference
    assert client.get_model_version_download_uri("fraud-prod", ref.version) == "models:/fraud/2"
    err = _error(client.copy_model_version, "models:/fraud/9", "fraud-prod")
    assert "not found" in err.message or "does not exist" in err.message
