"""Who acted, and what a token may see (issue 12, acceptance 1): events name the token whatever
its client claims, expired tokens are refused, and a model-limited token's event list and live
stream hold only the events of the models it covers."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import msgpack
import pytest

from gov_support import model_folder, register
from modelreg.shared.errors import Unauthorized
from modelreg.shared.sync_client import SyncClient
from waiting import wait_until


def mlflow_call(url: str, secret: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url + "/api/2.0/mlflow/" + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                                              "X-Modelreg-Actor": "impostor@elsewhere"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def test_events_name_the_token_that_acted_whatever_its_client_claims(daemon, admin, token, tmp_path) -> None:
    ci = token("ci", "promote", models="fraud*")  # its client claims to be impostor@elsewhere
    ci.upload_and_register("fraud", model_folder(tmp_path, 1))
    ci.record_metrics("fraud@1", {"auc": 0.93})
    ci.transition("fraud@1", "staging", reason="ci run 42")
    mlflow_call(daemon.url, ci.secret, "registered-models/set-tag", {"name": "fraud", "key": "team", "value": "risk"})
    acted = [(e["kind"], e["actor"]) for e in admin.events(model="fraud")["items"]]
    assert ("version.created", "ci") in acted and ("metric.recorded", "ci") in acted, acted
    assert ("stage.changed", "ci") in acted and ("model.updated", "mlflow:ci") in acted, acted
    assert {a for _, a in acted} == {"ci", "mlflow:ci"}, acted
    # The home's token is still trusted to say who its user is.
    admin.transition("fraud@1", "production", reason="by hand")
    assert admin.events(model="fraud", kind="stage.changed")["items"][-1]["actor"] == "owner@laptop"


def test_an_expired_token_is_refused_once_its_time_is_up(daemon, admin, modelreg) -> None:
    started = time.time()
    made = modelreg("token", "create", "brief", "--scope", "read", "--expires", "2s", "--json", check=True)
    brief = SyncClient(url=daemon.url, token=json.loads(made.stdout)["token"])
    expires_at = started + 2  # at the earliest: the daemon counted from when it made the token
    try:
        brief.whoami()
    except Unauthorized:
        assert time.time() >= expires_at - 0.1, "refused while it was still valid"

    def refused() -> str:
        try:
            brief.whoami()
        except Unauthorized as exc:
            return exc.message
        return ""

    assert "expired" in wait_until(refused, 20, "the token to expire")
    assert [t["state"] for t in admin.tokens() if t["name"] == "brief"] == ["expired"]


def test_a_model_limited_token_lists_only_the_events_of_its_models(admin, token, tmp_path) -> None:
    register(admin, tmp_path / "other", 1, model="other")
    register(admin, tmp_path / "fraud", 1, model="fraud")
    everyone = token("auditor", "read")
    limited = token("fraud-reader", "read", models="fraud*")
    seen_by_all = {e["model"] for e in everyone.events()["items"]}
    assert {"other", "fraud", None} <= seen_by_all  # token.created has no model
    page = limited.events()
    assert page["items"] and {e["model"] for e in page["items"]} == {"fraud"}
    assert page["last_id"] == everyone.events()["last_id"]  # pages on past what it may not see
    assert limited.events(model="other")["items"] == []


async def _frames(ws: aiohttp.ClientWebSocketResponse, until: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """Events from the stream until one satisfies ``until`` (the deadline fails the test)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or not until(got[-1]):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting on the stream; got {[(e['kind'], e['model']) for e in got]}"
        msg = await asyncio.wait_for(ws.receive(), left)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        got.append(msgpack.unpackb(msg.data, raw=False))
    return got


async def test_the_event_stream_of_a_model_limited_token_holds_only_its_models(daemon, admin, token, tmp_path):
    limited = token("fraud-watcher", "read", models="fraud*")
    everyone = token("watcher", "read")
    register(admin, tmp_path / "other", 1, model="other")
    first = register(admin, tmp_path / "fraud", 1, model="fraud")
    headers = lambda t: {"Authorization": f"Bearer {t.secret}"}  # noqa: E731
    url = daemon.url + "/v1/events/stream"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, params={"after": "0"}, headers=headers(limited)) as mine, \
                http.ws_connect(url, params={"after": "0"}, headers=headers(everyone)) as all_of_them:
            def is_ready(n: int):  # noqa: ANN202
                return lambda e: e["kind"] == "version.ready" and e["model"] == "fraud" and e["version"] == n

            backlog = await _frames(mine, is_ready(first["version"]))
            assert {e["model"] for e in backlog} == {"fraud"}, [(e["kind"], e["model"]) for e in backlog]
            # Live: another model's version, then one of fraud's; only fraud's arrives.
            await asyncio.to_thread(register, admin, tmp_path / "other", 2, model="other")
            second = await asyncio.to_thread(register, admin, tmp_path / "fraud", 2, model="fraud")
            live = await _frames(mine, is_ready(second["version"]))
            assert {e["model"] for e in live} == {"fraud"}, [(e["kind"], e["model"]) for e in live]
            # The same stream with a token for every model holds the rest (the filter can fail).
            seen = await _frames(all_of_them, is_ready(second["version"]))
            assert {"other", "fraud", None} <= {e["model"] for e in seen}


async def test_a_stream_closes_when_its_token_is_revoked(daemon, admin, token) -> None:
    viewer = token("viewer", "read")
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {viewer.secret}"}
        async with http.ws_connect(daemon.url + "/v1/events/stream", headers=auth) as ws:
            await asyncio.to_thread(admin.revoke_token, "viewer")
            deadline = time.monotonic() + 30
            while True:  # the revocation's own event may come first
                msg = await asyncio.wait_for(ws.receive(), max(0.1, deadline - time.monotonic()))
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


def test_a_refused_stream_is_refused_before_it_opens(daemon, admin) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(daemon.url + "/v1/events/stream",
                                                      headers={"Authorization": "Bearer mr_nosuchtoken"}), timeout=30)
    assert refused.value.code == 401
