"""The serving refresh is an after-commit step (issue 9): when HOME/serving cannot be written,
a promotion that committed still answers with its committed result, and the links catch up
once the obstacle is gone (retried, not left stale until the next restart)."""

from __future__ import annotations

import shutil

from lifecycle_support import Versions, wait_until, weights_for


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
