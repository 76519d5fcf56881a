"""A pending approval request closes when its move stops making sense (issue 12): the version
reached the target another way, or it was archived (a watchdog rolled it away, say). Nobody
can approve a move whose facts changed under them."""

from __future__ import annotations

import pytest

from gov_support import register
from modelreg.shared.errors import Conflict


def _open_request(admin, ci, tmp_path) -> tuple[int, int]:
    register(admin, tmp_path, 1, auc=0.9)
    gate = admin.add_gate("approvals >= 1", stage="production", model="fraud")
    held = ci.promote("fraud@1", reason="nightly")
    assert held["request"]["status"] == "pending"
    return held["request"]["id"], gate["id"]


def test_a_request_closes_when_its_version_gets_there_another_way(admin, token, tmp_path):
    ci, bob = token("ci", "promote"), token("bob", "promote")
    request_id, gate_id = _open_request(admin, ci, tmp_path)
    admin.remove_gate(gate_id)
    admin.promote("fraud@1", reason="hotfix, no time for review")

    closed = admin.approval_request(request_id)
    assert closed["status"] == "cancelled"
    assert "fraud@1 reached production without it (transition by owner@laptop)" in closed["outcome"]
    with pytest.raises(Conflict):
        bob.approve(request_id, reason="late")
    assert [e["data"]["status"] for e in admin.events(kind="approval.closed")["items"]] == ["cancelled"]


def test_a_request_closes_when_its_version_is_archived(admin, token, tmp_path):
    ci, bob = token("ci", "promote"), token("bob", "promote")
    request_id, _ = _open_request(admin, ci, tmp_path)
    admin.archive("fraud@1", reason="superseded")

    assert admin.approval_request(request_id)["status"] == "cancelled"
    with pytest.raises(Conflict):
        bob.approve(request_id, reason="late")
    assert admin.version("fraud@1")["stage"] == "archived"


def test_the_approved_request_itself_closes_approved(admin, token, tmp_path):
    ci, bob = token("ci", "promote"), token("bob", "promote")
    request_id, _ = _open_request(admin, ci, tmp_path)
    done = bob.approve(request_id, reason="checked")
    assert done["request"]["status"] == "approved" and admin.version("fraud@1")["stage"] == "production"
    assert [e["data"]["status"] for e in admin.events(kind="approval.closed")["items"]] == ["approved"]
