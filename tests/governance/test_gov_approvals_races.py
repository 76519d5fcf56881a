"""Approval requests under concurrency and time (issue 12): approvals that arrive together run
the move once; a request nobody decides on expires."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from daemon_process import start_daemon
from gov_support import make_token, register
from modelreg.shared.errors import Conflict
from modelreg.shared.sync_client import SyncClient
from waiting import wait_until


def _together(calls: list) -> list:
    """Run the calls at the same moment (a barrier releases every thread at once); their outcomes."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _production_changes(admin, number: int) -> list[dict]:
    return [e for e in admin.events(kind="stage.changed", limit=1000)["items"]
            if e["version"] == number and e["data"]["to"] == "production"]


@pytest.mark.parametrize("gates", [["approvals >= 2"], ["approvals >= 2", "command: exit 0"]],
                         ids=["rules", "with-a-command-gate"])
def test_approvals_sent_together_run_the_move_once(admin, token, tmp_path, gates):
    register(admin, tmp_path, 1, auc=0.9)
    for rule in gates:
        admin.add_gate(rule, stage="production", model="fraud")
    alice, bob = token("alice", "promote"), token("bob", "promote")
    voters = [token(f"voter{i}", "promote") for i in range(3)]
    first = alice.promote("fraud@1", reason="ship")["request"]["id"]
    bob.approve(first, "one in")  # the request needs one more: three arrive at once
    results = _together([lambda v=v: v.approve(first, "me too") for v in voters])
    moved = [r for r in results if isinstance(r, dict) and r["change"] is not None]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(moved) == 1 and len(refused) == 2, results
    assert all("already approved" in r.message for r in refused)
    assert len(_production_changes(admin, 1)) == 1
    assert admin.version("fraud@1")["stage"] == "production"

    # From no approvals at all, two at once: neither knows it will be the completing one.
    register(admin, tmp_path, 2, auc=0.9)
    second = alice.promote("fraud@2", reason="again")["request"]["id"]
    results = _together([lambda v=v: v.approve(second, "together") for v in voters[:2]])
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["change"] is not None for r in results) == 1
    request = admin.approval_request(second)
    assert request["status"] == "approved" and len(request["approvals"]) == 2
    assert len(_production_changes(admin, 2)) == 1
    assert admin.audit_verify()["ok"]


def test_a_request_expires_and_a_late_vote_is_refused(tmp_path):
    home = tmp_path / "short"
    daemon = start_daemon(home, env={"MODELREG_APPROVAL_TTL": "1s"})
    try:
        admin = SyncClient(url=daemon.url, token=daemon.token, actor="owner@laptop")
        register(admin, tmp_path / "models", 1, auc=0.9)
        admin.add_gate("approvals >= 1", stage="production", model="fraud")
        alice = make_token(admin, daemon.url, "alice", "promote")
        bob = make_token(admin, daemon.url, "bob", "promote")
        rid = alice.promote("fraud@1", reason="ship")["request"]["id"]
        expired = wait_until(lambda: (r := bob.approval_request(rid))["status"] == "expired" and r, 20,
                             "the request to expire")
        assert expired["closed_at"] and "expired" in expired["outcome"]
        with pytest.raises(Conflict, match="already expired"):
            bob.approve(rid, "too late")
        assert admin.version("fraud@1")["stage"] == "none"
        closed = [e["data"] for e in admin.events(kind="approval.closed")["items"]]
        assert [(d["request"], d["status"]) for d in closed] == [(rid, "expired")]
        # Asking again opens a new request; the expired one stays closed.
        again = alice.promote("fraud@1", reason="once more")["request"]
        assert again["id"] != rid and again["status"] == "pending"
        # Voted on after its expiry but before anything read it: closed then, the vote not counted.
        deadline = datetime.fromisoformat(again["expires_at"].replace("Z", "+00:00")).timestamp()
        wait_until(lambda: time.time() > deadline + 0.1, 20, "the second request's expiry")
        with pytest.raises(Conflict, match="expired at .* the vote was not recorded"):
            bob.approve(again["id"], "late again")
        assert admin.approval_request(again["id"])["approvals"] == []
    finally:
        daemon.stop()
