"""Webhooks and command hooks (issue 3, acceptance 6): one signed delivery per transition,
retries with backoff and a delivery log when the receiver is down, transitions unaffected."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from lifecycle_support import Versions, wait_until
from modelreg.daemon.app import create_app
from modelreg.daemon.config import DaemonConfig
from modelreg.shared.client import Client

SECRET = "correct horse battery staple"


class Receiver:
    """A webhook receiver on loopback that records every request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []   # answers for the next requests; 200 once empty
        self.hold: asyncio.Event | None = None
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    if r.hold is not None:
        r.hold.set()
    await r.stop()


def signature_ok(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    signed = f"{headers['X-Modelreg-Event-Id']}.{headers['X-Modelreg-Timestamp']}.".encode() + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Modelreg-Signature"], expected)


async def add_hook(client: Client, **body) -> dict:
    return await client.request("POST", "/v1/hooks", body=body)


async def deliveries(client: Client, hook_id: int) -> list[dict]:
    return (await client.request("GET", f"/v1/hooks/{hook_id}/deliveries"))["items"]


async def test_each_transition_gets_one_signed_delivery_and_command_hooks_get_the_event(
        daemon, client, versions: Versions, receiver: Receiver, tmp_path: Path):
    url = await receiver.start()
    hook = await add_hook(client, kind="webhook", target=url, events="stage.changed", secret=SECRET)
    assert hook["signed"] is True and hook["secret"] == SECRET
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    command = await add_hook(client, kind="command", target=f"cat > {outbox}/event-$MODELREG_EVENT_ID.json",
                             events="stage.changed", stage="production")
    await versions.add(1)
    await versions.add(2)

    await client.promote("fraud@1", "staging", reason="shadow")
    await client.promote("fraud@1", reason="go")
    await client.promote("fraud@2", reason="better")
    await client.rollback("fraud", reason="bad p99")
    await client.set_alias("fraud", "champion", 1)  # not a stage change: no delivery
    changes = (await client.events(kind="stage.changed"))["items"]
    assert len(changes) == 6

    await wait_until(lambda: _at_least(receiver, 6), 15, "six webhook deliveries")
    await asyncio.sleep(0.5)  # anything extra (a duplicate, the alias event) would arrive now
    assert len(receiver.requests) == 6
    by_id = {e["id"]: e for e in changes}
    assert sorted(int(h["X-Modelreg-Event-Id"]) for h, _ in receiver.requests) == sorted(by_id)
    for headers, body in receiver.requests:
        assert signature_ok(headers, body), headers
        assert not signature_ok(headers, body + b" "), "a changed body must not verify"
        assert not signature_ok(headers, body, secret="wrong secret")
        sent = json.loads(body)
        assert sent == by_id[int(headers["X-Modelreg-Event-Id"])]
        assert headers["X-Modelreg-Event"] == "stage.changed" and headers["Content-Type"] == "application/json"
    log = await deliveries(client, hook["id"])
    assert [(d["state"], d["attempts"], d["last_status"]) for d in log] == [("delivered", 1, "HTTP 200")] * 6

    # The command hook got only stage changes into production, each event as JSON on stdin.
    into_production = {e["id"]: e for e in changes if e["data"]["to"] == "production"}
    assert len(into_production) == 3
    await wait_until(lambda: _files_ready(outbox, 3, command["id"], client), 15, "three command hook runs")
    for event_id, event in into_production.items():
        got = json.loads((outbox / f"event-{event_id}.json").read_text())
        assert got == event
    assert sorted(p.name for p in outbox.iterdir()) == sorted(f"event-{i}.json" for i in into_production)


async def _at_least(receiver: Receiver, n: int) -> bool:
    return len(receiver.requests) >= n


async def _files_ready(outbox: Path, n: int, hook_id: int, client: Client) -> bool:
    log = await deliveries(client, hook_id)
    return len(log) == n and all(d["state"] == "delivered" for d in log)


# -- retries need a short backoff: the daemon runs in-process with hook_backoff=0.2 ---------------


@pytest.fixture
async def fast_retry_daemon(home: Path) -> AsyncIterator[str]:
    """The real daemon app on a loopback port, with retries after 0.2 s, 0.4 s, 0.8 s, …"""
    app = create_app(DaemonConfig(home=home, port=0, hook_backoff=0.2))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    # Bounded: a shutdown that hangs is this test's error, not a stalled run.
    await asyncio.wait_for(runner.cleanup(), 60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_deliveries_to_a_receiver_that_is_down_are_retried_logged_and_never_block(
        fast_retry_daemon: str, home: Path, modelreg, receiver: Receiver, tmp_path: Path, caplog):
    async with Client(url=fast_retry_daemon, token=(home / "token").read_text().strip()) as client:
        versions = Versions(client, tmp_path / "src")
        await versions.add(1)
        await versions.add(2)
        port = free_port()
        hook = await add_hook(client, kind="webhook", target=f"http://127.0.0.1:{port}/hook",
                              events="stage.changed", secret=SECRET)

        # Nobody listens: the promotion commits all the same.
        result = await client.promote("fraud@1", reason="receiver is down")
        assert result["version"]["stage"] == "production"

        async def failed_attempts() -> dict | None:
            # Enqueued after the commit (not yet, right after the promotion returns); between two
            # attempts (during one it is claimed: ``sending``).
            log = await deliveries(client, hook["id"])
            return log[0] if len(log) == 1 and log[0]["attempts"] >= 3 and log[0]["state"] == "pending" else None

        d = await wait_until(failed_attempts, 15, "three failed attempts")
        assert d["state"] == "pending" and d["next_attempt_at"]
        assert "Connect" in d["last_status"] or "refused" in d["last_status"].lower(), d
        shown = await asyncio.to_thread(modelreg, "hook", "deliveries", str(hook["id"]),
                                        env={"MODELREG_URL": fast_retry_daemon})
        assert shown.returncode == 0, shown
        assert "pending" in shown.stdout and "stage.changed" in shown.stdout and "fraud@1" in shown.stdout
        assert receiver.requests == []

        # The receiver comes back on the same port: the next retry delivers, once.
        await receiver.start(port)

        async def delivered() -> dict | None:
            (d,) = await deliveries(client, hook["id"])
            return d if d["state"] == "delivered" else None

        d = await wait_until(delivered, 15, "the retried delivery")
        assert d["attempts"] >= 4 and d["last_status"] == "HTTP 200"
        ((headers, body),) = receiver.requests
        assert signature_ok(headers, body) and json.loads(body)["data"]["to"] == "production"
        shown = await asyncio.to_thread(modelreg, "hook", "deliveries", str(hook["id"]), "--json",
                                        env={"MODELREG_URL": fast_retry_daemon})
        assert [(x["state"], x["attempts"]) for x in json.loads(shown.stdout)] == [("delivered", d["attempts"])]

        # A receiver that hangs, then answers 500 twice: the transition does not wait for it (it
        # returns while the receiver still holds the request, which it lets go only after; a
        # promotion that waited would never return), the 500s are logged and retried, and the
        # third attempt succeeds.
        receiver.requests.clear()
        receiver.hold = asyncio.Event()
        receiver.statuses = [500, 500]
        result = await client.promote("fraud@2", reason="receiver hangs")
        assert result["archived"] == [1]
        await wait_until(lambda: _at_least(receiver, 1), 10, "the hanging request")
        receiver.hold.set()
        receiver.hold = None

        async def retried_after_500() -> list[dict] | None:
            log = await deliveries(client, hook["id"])
            return log if any(x["last_status"] == "HTTP 500" and x["state"] == "pending" for x in log) else None

        await wait_until(retried_after_500, 10, "a logged HTTP 500")

        async def all_delivered() -> list[dict] | None:
            log = await deliveries(client, hook["id"])
            return log if len(log) == 3 and all(x["state"] == "delivered" for x in log) else None

        log = await wait_until(all_delivered, 15, "every delivery to succeed")
        new = log[:2]  # v1 archived and v2 promoted: two events, sent side by side
        assert sum(x["attempts"] for x in new) == 4 and all(x["last_status"] == "HTTP 200" for x in new)
        assert len(receiver.requests) == 4 and all(signature_ok(h, b) for h, b in receiver.requests)
        assert {int(h["X-Modelreg-Event-Id"]) for h, _ in receiver.requests} == {x["event_id"] for x in new}
        assert await versions.stages() == {1: "archived", 2: "production"}
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]
