"""The serving refresh is an after-commit step (issue 9): when HOME/serving cannot be written,
a promotion that committed still answers with its committed result, and the links catch up
once the obstacle is gone (retried, not left stale until the next restart)."""

from __future__ import annotations

import asyncio
import shutil

from lifecycle_support import Versions, wait_until, weights_for
from modelreg.daemon.services.lifecycle import ServingRefresher


async def test_a_blocked_serving_folder_does_not_fail_a_committed_promotion_and_is_retried(daemon, client,
                                                                                          versions: Versions):
    await versions.add(1)
    await versions.add(2)
    await client.promote("fraud@1", reason="first")
    folder = daemon.home / "serving" / "fraud"
    assert (folder / "production" / "version.txt").read_text() == "1\n"

    # The obstacle: HOME/serving/fraud is a file, so no link can be made under it.
    shutil.rmtree(folder)
    folder.write_text("not a folder\n")

    out = await client.promote("fraud@2", reason="second")
    assert out["version"]["version"] == 2 and out["version"]["stage"] == "production"
    assert out["archived"] == [1]
    assert (await client.resolve("fraud@production"))["version"] == 2
    assert folder.is_file()  # nothing could be pointed yet

    # The daemon keeps answering, and the next change is committed too.
    await client.promote("fraud@1", reason="third")
    assert (await client.resolve("fraud@production"))["version"] == 1
    await client.promote("fraud@2", reason="fourth")

    folder.unlink()

    async def repaired() -> bool:
        link = folder / "production"
        return link.is_symlink() and (link / "version.txt").exists() and (link / "version.txt").read_text() == "2\n"

    await wait_until(repaired, 40, "the serving link to be repaired by a retry")
    assert (folder / "production" / "weights.bin").read_bytes() == weights_for(2)
    assert sorted(p.name for p in folder.iterdir()) == ["production"]
    # And the normal path still swaps the link before the reply.
    await client.promote("fraud@1", reason="fifth")
    assert (folder / "production" / "version.txt").read_text() == "1\n"


async def test_the_refresher_shares_the_run_a_commit_started_and_retries_a_failed_one():
    calls: list[str] = []
    blocked = True

    async def refresh(model: str) -> None:
        calls.append(model)
        await asyncio.sleep(0)
        if blocked:
            raise OSError("serving folder not writable")

    r = ServingRefresher(refresh, delays=(0.05,))
    r.mark("fraud")  # what the commit subscriber does
    assert await r.wait("fraud", marked=True) is False  # the commit's run failed: False, not an exception
    await wait_until(lambda: asyncio.sleep(0, len(calls) >= 3), 5, "retries")
    blocked = False
    await wait_until(lambda: asyncio.sleep(0, "fraud" not in r._models), 5, "a retry to succeed")
    before = len(calls)
    r.mark("Fraud")
    assert await r.wait("fraud", marked=True) is True
    assert len(calls) == before + 1  # the caller shared the run its commit started
    assert await r.wait("fraud") is True  # an unmarked request always gets a run of its own
    assert len(calls) == before + 2
    await r.close()
