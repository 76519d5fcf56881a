"""The other ways into a stage under an approvals gate (issue 12): MLflow's transition, which
has no notion of a request, and a drop folder's requested stage, which the daemon asks for."""

from __future__ import annotations

from gov_support import mlflow_transition, model_folder, register
from waiting import wait_until


def test_mlflow_transition_held_for_approval_is_refused_naming_the_request(daemon, admin, token, tmp_path):
    register(admin, tmp_path, 1, auc=0.9)
    admin.add_gate("approvals >= 1", stage="production", model="fraud")
    alice, bob = token("alice", "promote"), token("bob", "promote")
    status, err = mlflow_transition(daemon.url, alice.secret, "fraud", 1, "Production")
    assert (status, err["error_code"]) == (403, "PERMISSION_DENIED"), err
    assert "approval request #1 is open" in err["message"]
    [request] = admin.requests(status="pending")
    assert (request["requested_by"], request["target"], request["reason"]) == ("alice", "production",
                                                                              "through the MLflow API")
    assert bob.approve(request["id"], "ok")["request"]["status"] == "approved"
    status, found = mlflow_transition(daemon.url, alice.secret, "fraud", 1, "Production")  # already there: nothing to do
    assert (status, found["model_version"]["current_stage"]) == (200, "Production")


def test_a_drops_requested_stage_under_an_approvals_gate_becomes_a_request_of_the_daemon(admin, token, tmp_path):
    admin.create_model("fraud")
    admin.add_gate("approvals >= 1", stage="staging", model="fraud")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    admin.add_watch(inbox, model="fraud", settle=0.2)
    drop = model_folder(tmp_path / "staging-area", 1, {"modelreg.toml": b'stage = "staging"\n'})
    drop.rename(inbox / "fraud-v1")
    request = wait_until(lambda: admin.requests(status="pending"), 30, "the drop's approval request")[0]
    assert (request["ref"], request["target"], request["requested_by"]) == ("fraud@1", "staging", "daemon")
    assert request["requested_actor"] == f"drop:{inbox}"
    result = token("bob", "promote").approve(request["id"], "the drop looks right")
    assert result["change"]["version"]["stage"] == "staging"
    assert admin.history("fraud")["items"][-1]["approvals"] == ["bob"]
