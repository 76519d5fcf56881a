"""Approval requests in the TUI (issue 12): the model screen shows the pending requests of its
model, live; the approve and reject keys take a reason and vote as the TUI's own identity (a
named token in MODELREG_TOKEN); a promote held by an `approvals >= N` gate says it opened a
request, and the daemon's refusals (approving your own request) are shown, never a crash.

The `live` registry (conftest): fraud v1 production, v3 staging and passing the production
gates, v4 registered. Tokens are made through the API with the home (admin) token.
"""

from __future__ import annotations

from typing import Any

from conftest import Registry, make_app, settled, wait_for
from modelreg.shared.client import Client
from modelreg.tui.screens.approval import ApprovalModal, outcome_note, request_details
from modelreg.tui.screens.transition import TransitionModal, held_for_approval
from modelreg.tui.widgets.formatting import Clock, Palette
from modelreg.tui.widgets.requests_panel import RequestsPanel, order_for, request_line
from test_keys import SIZE, open_fraud
from test_live import toasts


async def make_tokens(live: Registry, *names: str, scope: str = "promote") -> dict[str, str]:
    """Named tokens made by the registry's admin; their secrets by name."""
    async with live.client() as admin:
        return {name: (await admin.create_token(name, scope))["token"] for name in names}


def acting_as(live: Registry, secret: str) -> Client:
    return Client(live.endpoint(), token=secret, actor="someone@elsewhere")


async def open_request(live: Registry, secret: str, ref: str = "fraud@3", reason: str = "nightly retrain",
                       to: str = "production") -> dict:
    """``ref`` → ``to`` by the token ``secret``, held for approval: the request the daemon opened."""
    async with acting_as(live, secret) as c:
        answer = await c.transition(ref, to, reason=reason)
    assert answer.get("request"), answer  # 202: held for approval, nothing moved
    return answer["request"]


def panel(screen) -> RequestsPanel:
    return screen.query_one("#requests", RequestsPanel)


def panel_text(screen) -> str:
    return str(panel(screen).visual) if panel(screen).display else ""


async def test_gov_tui_a_pending_request_is_shown_live_and_the_approve_key_completes_it(live, monkeypatch):
    secrets = await make_tokens(live, "ci", "bob", "lead")
    await live.call(lambda c: c.add_gate("approvals >= 2", stage="production", model="fraud"))
    monkeypatch.setenv("MODELREG_TOKEN", secrets["lead"])  # the TUI acts as `lead`
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await settled(pilot)
        assert not panel(screen).display and not screen.check_action("approve", ())  # none pending: no band, no key
        req = await open_request(live, secrets["ci"])
        await wait_for(pilot, lambda: f"#{req['id']} fraud@3 → production by ci, 0/2 approvals" in panel_text(screen),
                       timeout=10, what="the request in the panel")
        assert "expires in" in panel_text(screen) and "nightly retrain" in panel_text(screen)
        async with acting_as(live, secrets["bob"]) as bob:
            await bob.approve(req["id"], "metrics look right")
        await wait_for(pilot, lambda: "1/2 approvals" in panel_text(screen), timeout=10, what="bob's approval, live")
        assert screen.table.summaries[3]["stage"] == "staging"

        await pilot.press("A")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen, what="the dialog")
        details = str(modal.query_one("#request-info").visual)
        assert "asked by ci" in details and "nightly retrain" in details
        assert "approvals 1 of 2" in details and "bob" in details and "metrics look right" in details
        assert modal.query_one("#confirm").disabled  # a reason is required
        await pilot.press(*"reviewed the eval", "enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        await wait_for(pilot, lambda: screen.table.summaries[3]["stage"] == "production"
                       and screen.table.summaries[1]["stage"] == "archived", timeout=10, what="fraud@3 in production")
        await wait_for(pilot, lambda: not panel(screen).display, timeout=10, what="the panel to empty")
        assert any(f"#{req['id']} fraud@3 → production: approved" in t for t in toasts(app))
        assert not screen.check_action("approve", ())
    closed = await live.call(lambda c: c.approval_request(req["id"]))
    assert closed["status"] == "approved"
    assert [(a["identity"], a["reason"]) for a in closed["approvals"]] == [("bob", "metrics look right"),
                                                                          ("lead", "reviewed the eval")]
    events = (await live.call(lambda c: c.events(model="fraud", limit=1000)))["items"]
    approved = [e for e in events if e["kind"] == "approval.approved"]
    assert [e["actor"] for e in approved][-2:] == ["bob", "lead"]  # the TUI acted as its token


async def test_gov_tui_a_promote_held_for_approval_opens_a_request_and_approving_it_yourself_is_refused(
        live, monkeypatch):
    secrets = await make_tokens(live, "ci")
    await live.call(lambda c: c.add_gate("approvals >= 1", stage="production", model="fraud"))
    monkeypatch.setenv("MODELREG_TOKEN", secrets["ci"])  # the TUI acts as `ci`
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 3)
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, TransitionModal) and app.screen.verdict
                               and app.screen, what="the verdict")
        # Only the approvals rule fails: confirming is allowed, force is not offered, the button says what happens.
        assert held_for_approval(modal.verdict) and not modal.query_one("#force").display
        assert str(modal.query_one("#confirm").label) == "Request approval"
        await pilot.press(*"ship it", "enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        await wait_for(pilot, lambda: any("approval request #" in t and "opened" in t and "needs 1 approval" in t
                                          for t in toasts(app)), what="the request notification")
        assert not any(t.startswith("stage changed") for t in toasts(app))  # nothing moved, and none claims it did
        await wait_for(pilot, lambda: "fraud@3 → production by ci, 0/1 approvals" in panel_text(screen),
                       timeout=10, what="the new request in the panel")
        assert screen.table.summaries[3]["stage"] == "staging"

        await pilot.press("A")
        vote = await wait_for(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen, what="the dialog")
        await pilot.press(*"my own", "enter")
        await wait_for(pilot, lambda: not vote.busy and str(vote.query_one("#dialog-error").visual).strip()
                       not in ("", "sending…"), what="the refusal")
        assert app.screen is vote and app.is_running  # shown in place, the dialog stays open
        refusal = str(vote.query_one("#dialog-error").visual)
        assert "ci asked for approval request" in refusal and "cannot approve it" in refusal, refusal  # the 403
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.table.summaries[3]["stage"] == "staging" and panel(screen).display


async def test_gov_tui_the_reject_key_closes_the_request_and_several_requests_can_be_picked(live, monkeypatch):
    secrets = await make_tokens(live, "ci", "lead")
    for stage in ("production", "staging"):
        await live.call(lambda c: c.add_gate("approvals >= 1", stage=stage, model="fraud"))
    first = await open_request(live, secrets["ci"], "fraud@3", "candidate")
    second = await open_request(live, secrets["ci"], "fraud@4", "cheaper model", to="staging")
    monkeypatch.setenv("MODELREG_TOKEN", secrets["lead"])
    app = make_app(live, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fraud(pilot, 4)
        await wait_for(pilot, lambda: len(panel(screen).requests) == 2, timeout=10, what="both requests")
        assert panel_text(screen).splitlines()[0].startswith(f"#{second['id']} fraud@4 → staging")  # highlighted first
        await pilot.press("X")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen, what="the dialog")
        assert modal.request["id"] == second["id"] and modal.query_one("#requests").display
        await pilot.press("down")  # pick the other one
        await wait_for(pilot, lambda: modal.request["id"] == first["id"], what="the other request")
        assert "candidate" in str(modal.query_one("#request-info").visual)
        await pilot.press(*"not before the audit", "enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        await wait_for(pilot, lambda: [r["id"] for r in panel(screen).requests] == [second["id"]], timeout=10,
                       what="the rejected request to leave the panel")
        assert any(f"#{first['id']} fraud@3 → production: rejected" in t for t in toasts(app))
        assert screen.table.summaries[3]["stage"] == "staging"
    closed = await live.call(lambda c: c.approval_request(first["id"]))
    assert closed["status"] == "rejected"
    assert [(r["identity"], r["reason"]) for r in closed["rejections"]] == [("lead", "not before the audit")]


# -- what the panel and the dialog say (no daemon) ------------------------------------------------------


def _req(**kw: Any) -> dict[str, Any]:
    base = {"id": 4, "model": "fraud", "version": 3, "target": "production", "requested_by": "ci",
            "requested_actor": "ci", "reason": "", "required": 2, "approvals": [], "rejections": [],
            "status": "pending", "outcome": "", "verdict": None, "created_at": 1000.0, "expires_at": 1000.0 + 6 * 86400}
    return {**base, **kw}


class _At(Clock):
    def now(self) -> float:
        return 1000.0 + 60


def test_gov_tui_request_lines_and_order():
    line = request_line(_req(approvals=[{"identity": "bob"}], reason="retrain"), _At(), Palette()).plain
    assert line == "#4 fraud@3 → production by ci, 1/2 approvals, expires in 5 days — retrain"
    home = request_line(_req(requested_by="admin", requested_actor="ana@laptop", target="@champion", required=1,
                             rejections=[{"identity": "x"}], expires_at=900.0), _At(), Palette()).plain
    assert home == "#4 fraud@3 → @champion by admin (ana@laptop), 0/1 approvals, 1 rejected, expiring now"
    reqs = [_req(id=1, version=2), _req(id=2, version=3), _req(id=3, version=2)]
    assert [r["id"] for r in order_for(reqs, 2)] == [1, 3, 2]
    assert [r["id"] for r in order_for(reqs, None)] == [1, 2, 3]


def test_gov_tui_details_and_outcomes():
    text = request_details(_req(reason="why not", approvals=[{"identity": "bob", "actor": "bob@ci", "reason": "ok",
                                                               "at": 1000.0}]), _At(), Palette()).plain
    assert "asked by ci" in text and "why why not" in text and "approvals 1 of 2" in text
    assert "bob (bob@ci) — ok  1m ago" in text
    assert outcome_note("approve", _req(status="approved"))[0] == \
        "#4 fraud@3 → production: approved, fraud@3 is now production"
    assert outcome_note("approve", _req(status="approved", target="@champion"))[0] == \
        "#4 fraud@3 → @champion: approved, @champion now points at fraud@3"
    assert outcome_note("approve", _req(approvals=[{"identity": "me"}]))[0].endswith("is in, 1 of 2 approvals")
    failed = outcome_note("approve", _req(status="failed", outcome="auc >= 0.9 failed on the re-run"))
    assert failed == ("#4 fraud@3 → production: failed: auc >= 0.9 failed on the re-run", "warning")
    assert held_for_approval({"rules": [{"kind": "approvals", "status": "fail"}, {"kind": "threshold",
                                                                                  "status": "pass"}]})
    assert not held_for_approval({"rules": [{"kind": "approvals", "status": "fail"},
                                            {"kind": "threshold", "status": "fail"}]})
    assert not held_for_approval({"rules": []}) and not held_for_approval(None)
