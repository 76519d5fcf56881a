"""Acceptance 2 of issue 10: an unchanged training script logs a scikit-learn model with
``registered_model_name``; an alias and a stage load it back through ``mlflow.pyfunc`` with
the same predictions; the files download byte for byte; and modelreg's own CLI shows the
version with its metric, its run, experiment and params."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
sklearn = pytest.importorskip("sklearn")
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_training_script_registers_and_loads_back(mlflow_env, modelreg, data, tmp_path: Path):
    X, y = data
    # -- the user's training script, unchanged but for MLFLOW_TRACKING_URI / _TOKEN ----------------
    mlflow.set_experiment("fraud-training")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 0.5)
        mlflow.log_param("solver", "lbfgs")
        model = LogisticRegression(C=0.5, solver="lbfgs").fit(X, y)
        mlflow.log_metric("auc", 0.934)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="fraud")
    expected = model.predict_proba(X)

    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name = 'fraud'")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].run_id == run.info.run_id and versions[0].status == "READY"
    client.set_registered_model_alias("fraud", "champion", "1")

    by_alias = mlflow.pyfunc.load_model("models:/fraud@champion")
    np.testing.assert_allclose(by_alias.predict(X), model.predict(X))
    sk = mlflow.sklearn.load_model("models:/fraud@champion")
    np.testing.assert_allclose(sk.predict_proba(X), expected)

    client.transition_model_version_stage("fraud", "1", "Production")
    by_stage = mlflow.pyfunc.load_model("models:/fraud/Production")
    np.testing.assert_allclose(by_stage.predict(X), model.predict(X))

    # The files come back exactly as they were logged: the logged model's own artifacts, read
    # straight from its artifact location, against the registry version's files.
    location = client.get_logged_model(info.model_id).artifact_location
    logged = _tree(Path(mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(tmp_path / "lm"))))
    assert "MLmodel" in logged and len(logged) >= 4, sorted(logged)
    uri = client.get_model_version_download_uri("fraud", "1")
    assert uri == "mlflow-artifacts:/_registry/fraud/1"
    assert _tree(Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "v")))) == logged
    by_ref = _tree(Path(mlflow.artifacts.download_artifacts("models:/fraud@champion", dst_path=str(tmp_path / "r"))))
    # The client writes registered_model_meta itself, naming what it downloaded; the rest is ours.
    assert by_ref.pop("registered_model_meta") == b"model_name: fraud\nmodel_version: '1'\n"
    assert by_ref == {k: v for k, v in logged.items() if k != "registered_model_meta"}

    # -- modelreg's own view: the version, its metric, its run, experiment and params ------------
    listing = modelreg("versions", "fraud", check=True).stdout
    assert "0.934" in listing and "production" in listing.lower()
    shown = modelreg("--json", "show", "fraud@1", check=True).stdout
    detail = json.loads(shown)
    assert detail["metrics"]["auc"] == pytest.approx(0.934)
    lineage = json.dumps(detail.get("lineage") or {})
    assert run.info.run_id in lineage and "fraud-training" in lineage
    assert '"C"' in lineage and "0.5" in lineage and "lbfgs" in lineage
