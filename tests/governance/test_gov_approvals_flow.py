"""Who may move a version (issue 12, acceptance 2 and 3), against a real daemon and the real CLI.

``by ci`` on production: the home's admin is refused (audited, --force or not), the ci token
moves it. ``approvals >= 2``: a promotion opens a request (202, CLI exit 7), the requester
cannot approve it, two other identities can and the move runs; a rejection closes a request
and nothing moves; all of it in ``history`` and the hash-chained audit log.
"""

from __future__ import annotations

import json

import pytest

from gov_support import register
from modelreg.shared.errors import Conflict, Forbidden, GateFailed

WAITING = 7


def _kinds(admin, kind: str) -> list[dict]:
    return admin.events(kind=kind, limit=1000)["items"]


def test_by_ci_refuses_the_admin_even_forced_and_lets_ci_move_it(admin, token, tmp_path, modelreg):
    register(admin, tmp_path, 1, auc=0.9)
    admin.add_gate("by ci", stage="production", model="fraud")
    ci = token("ci", "promote", models="fraud*")

    with pytest.raises(GateFailed) as refused:
        admin.promote("fraud@1", reason="release")
    failed = [r for r in refused.value.details["verdict"]["rules"] if r["status"] != "pass"]
    assert [(r["rule"], r["observed"]) for r in failed] == [("by ci", "admin")]
    assert "only ci may make this move, not admin" in refused.value.message

    with pytest.raises(GateFailed, match="--force does not override who may make this move"):
        admin.promote("fraud@1", reason="I am the admin", force=True)
    cli = modelreg("promote", "fraud@1", "--force", "--reason", "still the admin")
    assert cli.returncode == 3 and "--force does not override by ci" in cli.stderr, cli

    refusals = _kinds(admin, "stage.refused")
    assert [(e["actor"], e["data"]["verdict"]["forced"]) for e in refusals][:2] == [
        ("owner@laptop", False), ("owner@laptop", False)]
    assert len(refusals) == 3  # the CLI's refusal is audited too
    assert admin.version("fraud@1")["stage"] == "none"

    moved = ci.promote("fraud@1", reason="from CI")
    assert moved["version"]["stage"] == "production"
    changed = _kinds(admin, "stage.changed")
    assert [(e["actor"], e["data"]["to"]) for e in changed] == [("ci", "production")]
    assert admin.audit_verify()["ok"]


def test_two_person_approval_runs_the_move_and_a_rejection_closes_a_request(admin, token, tmp_path, modelreg):
    register(admin, tmp_path, 1, auc=0.9)
    register(admin, tmp_path, 2, auc=0.95)
    admin.add_gate("approvals >= 2", stage="production", model="fraud")
    alice, bob, carol = (token(n, "promote", models="fraud*") for n in ("alice", "bob", "carol"))

    # A promotes through the CLI: the move waits for approval (exit 7) and says how to approve it.
    cli = modelreg("promote", "fraud@1", "--reason", "better auc", env={"MODELREG_TOKEN": alice.secret})
    assert cli.returncode == WAITING, cli
    assert "approval request #1 opened: fraud@1 → production needs 2 approvals (0 so far)" in cli.stdout, cli.stdout
    assert "modelreg approve 1 --reason" in cli.stdout
    request = alice.approval_request(1)
    assert (request["requested_by"], request["reason"], request["status"], request["required"]) == (
        "alice", "better auc", "pending", 2)
    assert admin.version("fraud@1")["stage"] == "none"
    # A second promotion of the same move joins the open request.
    assert alice.promote("fraud@1", reason="again")["request"]["id"] == 1
    listed = modelreg("requests", env={"MODELREG_TOKEN": bob.secret})
    assert "#1" in listed.stdout and "alice" in listed.stdout and "0/2" in listed.stdout, listed

    with pytest.raises(Forbidden, match="alice asked for approval request #1 and cannot approve it"):
        alice.approve(1, "my own")
    after_bob = bob.approve(1, "checked the eval")
    assert after_bob["request"]["status"] == "pending" and after_bob["change"] is None
    assert [a["identity"] for a in after_bob["request"]["approvals"]] == ["bob"]
    with pytest.raises(Conflict, match="bob has already voted"):
        bob.approve(1, "twice")
    assert admin.version("fraud@1")["stage"] == "none"

    cli = modelreg("approve", "1", "--reason", "looks right", env={"MODELREG_TOKEN": carol.secret})
    assert cli.returncode == 0, cli
    assert "approved request #1" in cli.stdout and "fraud@1 is now production, approved by bob, carol" in cli.stdout
    assert admin.version("fraud@production")["version"] == 1
    closed = alice.approval_request(1)
    assert closed["status"] == "approved" and closed["closed_at"]
    assert [a["identity"] for a in closed["approvals"]] == ["bob", "carol"]

    # A second request, rejected by B: it closes and nothing moves.
    opened = alice.promote("fraud@2", reason="even better")
    assert opened["request"]["id"] == 2 and opened["request"]["status"] == "pending"
    rejected = bob.reject(2, "the eval set leaked")
    assert rejected["request"]["status"] == "rejected" and rejected["change"] is None
    assert rejected["request"]["rejections"][0]["reason"] == "the eval set leaked"
    with pytest.raises(Conflict, match="already rejected"):
        carol.approve(2, "too late")
    assert admin.version("fraud@production")["version"] == 1 and admin.version("fraud@2")["stage"] == "none"

    # history: the change as the requester made it, with its approvers (API and CLI).
    items = admin.history("fraud")["items"]
    assert [(i["version"], i["to"], i["actor"], i["approvals"]) for i in items] == [
        (1, "production", "alice", ["bob", "carol"])]
    shown = modelreg("history", "fraud").stdout
    assert "approved by" in shown and "bob, carol" in shown, shown

    # The audit log holds every step, in order, and the chain is intact.
    events = [e for e in admin.events(limit=1000)["items"] if e["kind"].startswith(("approval.", "stage."))]
    assert [(e["kind"], e["actor"], e["data"].get("request"), e["data"].get("status")) for e in events] == [
        ("approval.requested", "alice", 1, None),
        ("approval.requested", "alice", 1, None),   # the second promotion joined it
        ("approval.approved", "bob", 1, None),
        ("approval.approved", "carol", 1, None),
        ("stage.changed", "alice", None, None),
        ("approval.closed", "alice", 1, "approved"),
        ("approval.requested", "alice", 2, None),
        ("approval.rejected", "bob", 2, None),
        ("approval.closed", "alice", 2, "rejected"),
    ]
    changed = next(e for e in events if e["kind"] == "stage.changed")
    assert changed["data"]["approvals"] == ["bob", "carol"] and changed["data"]["verdict"]["passed"]
    assert json.loads(modelreg("audit", "verify", "--json").stdout)["ok"]

    mine = alice.requests(mine=True)
    assert [r["id"] for r in mine] == [2, 1] and bob.requests(mine=True) == []
    assert [r["id"] for r in admin.requests(status="pending")] == []


def test_the_completing_approval_reruns_the_other_gates_on_fresh_state(admin, token, tmp_path):
    """The request was opened while auc passed; a worse record since makes the move fail."""
    register(admin, tmp_path, 1, auc=0.95)
    admin.add_gate("approvals >= 1", stage="production", model="fraud")
    admin.add_gate("auc >= 0.9", stage="production", model="fraud")
    alice, bob = token("alice", "promote"), token("bob", "promote")
    request = alice.promote("fraud@1", reason="ship")["request"]
    assert request["verdict"]["rules"][0]["status"] == "fail"  # approvals: 0 of 1
    admin.record_metrics("fraud@1", {"auc": 0.5})
    result = bob.approve(request["id"], "ok")
    assert result["request"]["status"] == "failed" and result["change"] is None
    assert "auc >= 0.9" in result["request"]["outcome"]
    assert admin.version("fraud@1")["stage"] == "none"


def test_a_move_failing_other_rules_too_is_a_refusal_that_says_approval_is_needed(admin, token, tmp_path):
    register(admin, tmp_path, 1, auc=0.5)
    admin.add_gate("approvals >= 2", stage="production", model="fraud")
    admin.add_gate("auc >= 0.9", stage="production", model="fraud")
    alice = token("alice", "promote")
    with pytest.raises(GateFailed, match="will need approval") as refused:
        alice.promote("fraud@1", reason="ship")
    assert {r["rule"] for r in refused.value.details["verdict"]["rules"] if r["status"] != "pass"} == {
        "approvals >= 2", "auc >= 0.9"}
    assert admin.requests() == []
    # --force overrides the metric rule, never the approvals: still a refusal.
    with pytest.raises(GateFailed, match="--force does not override who may make this move"):
        alice.promote("fraud@1", reason="ship anyway", force=True)
    assert admin.requests() == [] and admin.version("fraud@1")["stage"] == "none"


def test_voting_needs_promote_and_a_reason(admin, token, tmp_path, modelreg):
    register(admin, tmp_path, 1, auc=0.9)
    admin.add_gate("approvals >= 1", stage="production", model="fraud")
    alice, writer = token("alice", "promote"), token("writer", "write")
    other_model = token("churner", "promote", models="churn*")
    rid = alice.promote("fraud@1", reason="ship")["request"]["id"]
    with pytest.raises(Forbidden, match="needs 'promote'"):
        writer.approve(rid, "ok")
    with pytest.raises(Forbidden, match="covers models 'churn\\*'"):
        other_model.approve(rid, "ok")
    assert other_model.requests() == []  # a model-limited token sees only its models' requests
    cli = modelreg("approve", str(rid), "--reason", " ")
    assert cli.returncode == 2 and "needs a reason" in cli.stderr, cli
    assert admin.approval_request(rid)["approvals"] == []
