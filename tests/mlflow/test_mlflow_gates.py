"""Our rules hold through MLflow (issue 10, acceptance 3): a production gate refuses a stock
client's ``transition_model_version_stage`` and an alias gate refuses its
``set_registered_model_alias``; the MlflowException names the failing rule, nothing moves,
and the refusal is audited with the token's identity."""

from __future__ import annotations

from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402

from modelreg.shared.sync_client import SyncClient  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*transition_model_version_stage.*:FutureWarning")


@pytest.fixture
def registry(daemon, tmp_path: Path):
    """fraud v1 (auc 0.91), v2 (auc 0.87), v3 (auc 0.95), registered through our own API with metrics."""
    c = SyncClient(url=daemon.url, token=daemon.token, actor="ana@ci")
    for number, auc in ((1, 0.91), (2, 0.87), (3, 0.95)):
        folder = tmp_path / f"v{number}"
        folder.mkdir()
        (folder / "model.bin").write_bytes(f"weights {number}\n".encode())
        assert c.register("fraud", path=folder, wait=True, metrics={"auc": auc})["version"]["version"] == number
    yield c
    c.close()


def test_a_production_gate_refuses_an_mlflow_transition_naming_the_rule(client, registry):
    client.transition_model_version_stage("fraud", "1", "Production")
    registry.add_gate("auc >= production", stage="production", model="fraud")
    last = registry.events(limit=1)["last_id"]
    with pytest.raises(MlflowException) as exc:
        client.transition_model_version_stage("fraud", "2", "Production", archive_existing_versions=True)
    assert exc.value.error_code == "PERMISSION_DENIED"
    assert "auc >= production" in exc.value.message and "0.87" in exc.value.message, exc.value.message
    assert client.get_model_version("fraud", "2").current_stage == "None"
    assert client.get_model_version("fraud", "1").current_stage == "Production"
    (refusal,) = [e for e in registry.events(after=last)["items"] if e["kind"] == "stage.refused"]
    assert refusal["version"] == 2 and refusal["data"]["verdict"]["passed"] is False
    # A version that passes goes through the same client call.
    assert client.transition_model_version_stage("fraud", "3", "Production").current_stage == "Production"


def test_an_alias_gate_refuses_an_mlflow_alias_move_naming_the_rule(client, registry):
    client.set_registered_model_alias("fraud", "champion", "1")  # no gate yet
    registry.add_gate("auc >= production", alias="champion", model="fraud")
    last = registry.events(limit=1)["last_id"]
    with pytest.raises(MlflowException) as exc:
        client.set_registered_model_alias("fraud", "champion", "2")
    assert exc.value.error_code == "PERMISSION_DENIED"
    message = exc.value.message
    assert "@champion" in message and "auc >= production" in message and "0.87" in message, message
    assert client.get_model_version_by_alias("fraud", "champion").version == "1"
    (refusal,) = [e for e in registry.events(after=last)["items"] if e["kind"] == "alias.refused"]
    assert (refusal["version"], refusal["data"]["alias"], refusal["data"]["from"]) == (2, "champion", 1)
    assert refusal["actor"]  # the token's identity

    client.set_registered_model_alias("fraud", "champion", "3")  # passes: 0.95 >= 0.91
    assert client.get_model_version_by_alias("fraud", "champion").version == "3"
    # Another alias is not guarded by champion's gates.
    client.set_registered_model_alias("fraud", "challenger", "2")
    assert client.get_model_version_by_alias("fraud", "challenger").version == "2"
