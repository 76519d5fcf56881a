"""Each webhook delivery happens once, not once per daemon (issue 13, acceptance 2): with two
daemons on one registry, a promotion fires its webhook once, and neither daemon sends it again
once both have matched the event and swept their due deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from cluster_support import MODEL, Cluster, register
from waiting import wait_until


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A real HTTP server on loopback: its URL, and every request it got (headers and all)."""
    got: list[web.Request] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        got.append(request)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", got
    await runner.cleanup()


async def test_a_webhook_fires_once_for_one_promotion_with_two_daemons(cluster: Cluster, webhook):
    url, got = webhook
    async with cluster.clients(1) as (a, b):
        await register(a, cluster.root, 1)
        hook = await a.request("POST", "/v1/hooks", body={"kind": "webhook", "target": url,
                                                          "events": "stage.changed"})
        await b.promote(f"{MODEL}@1", reason="one delivery")
        event_id = (await b.status())["last_event"]

        await asyncio.to_thread(wait_until, lambda: got, 15, "the webhook")
        # Both dispatchers matched the event, and each ran a delivery pass after that which
        # left nothing due unclaimed: a second send would have happened by now.
        for daemon in (cluster.a, cluster.b):
            client = cluster.sync(daemon)
            await asyncio.to_thread(wait_until, lambda c=client: c.status()["hooks"]["swept"] >= event_id, 15,
                                    f"{daemon.home.name}'s dispatcher to pass event {event_id}")

        assert [int(r.headers["X-Modelreg-Event-Id"]) for r in got] == [event_id]
        (delivery,) = (await b.request("GET", f"/v1/hooks/{hook['id']}/deliveries"))["items"]
        assert (delivery["event_id"], delivery["state"], delivery["attempts"]) == (event_id, "delivered", 1)
