"""Events fan out across daemons (issue 13, acceptance 2): a promotion made through daemon A
reaches a WebSocket stream connected to daemon B within a second, and B's stream carries
every event of the registry (A's and its own) once, in order."""

from __future__ import annotations

import asyncio
import time

from cluster_support import MODEL, Cluster, register

PROMOTIONS = 5


async def test_promotions_through_a_reach_a_stream_on_b_within_a_second(cluster: Cluster):
    async with cluster.clients(1) as (a, b):
        for n in range(1, PROMOTIONS + 1):
            await register(a, cluster.root, n)
        start = (await b.status())["last_event"]
        received: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()

        async def follow() -> None:
            async for event in b.stream_events(after=start):
                received.put_nowait((time.monotonic(), event))

        async def next_event(kind: str, version: int) -> tuple[float, dict]:
            while True:
                at, event = await asyncio.wait_for(received.get(), 10)
                seen.append(event["id"])
                if event["kind"] == kind and event["version"] == version:
                    return at, event

        seen: list[int] = []
        follower = asyncio.create_task(follow())
        try:
            # B's own registration shows on B's stream: the stream is live.
            await register(b, cluster.root, PROMOTIONS + 1)
            await next_event("version.ready", PROMOTIONS + 1)

            latencies = []
            for n in range(1, PROMOTIONS + 1):
                sent = time.monotonic()
                await a.promote(f"{MODEL}@{n}", reason="made through A")
                at, event = await next_event("stage.changed", n)
                assert event["data"]["to"] == "production"
                latencies.append(at - sent)
            print(f"\nA's promotion → B's stream: {', '.join(f'{x * 1000:.0f} ms' for x in latencies)}")
            assert max(latencies) < 1.0, latencies

            # Every event after `start`, from both daemons, once and in order.
            last = (await a.status())["last_event"]
            while not seen or seen[-1] < last:
                seen.append((await asyncio.wait_for(received.get(), 10))[1]["id"])
            assert seen == list(range(start + 1, last + 1))
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
