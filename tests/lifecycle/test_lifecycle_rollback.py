"""Rollback in one step, history at a point in time, and digests re-checked before a
rollback (issue 3, acceptance 4)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from lifecycle_support import Versions, weights_for


def _serving_version(home: Path) -> str:
    return (home / "serving" / "fraud" / "production" / "version.txt").read_text().strip()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_rollback_restores_the_previous_production_and_history_answers_at_a_time(daemon, modelreg, client,
                                                                                      versions: Versions):
    await versions.add(1)
    await versions.add(2)
    await asyncio.sleep(0.02)
    modelreg("promote", "fraud@1", "--reason", "first", check=True)
    await asyncio.sleep(0.02)
    promoted = modelreg("promote", "fraud@2", "--reason", "better offline auc", check=True)
    assert "fraud@2 is now production; v1 archived" in promoted.stdout
    assert _serving_version(daemon.home) == "2"
    await asyncio.sleep(0.02)

    rolled = modelreg("rollback", "fraud", "--reason", "bad p99")
    assert rolled.returncode == 0, rolled
    assert "v1 is production again, v2 archived" in rolled.stdout
    assert await versions.stages() == {1: "production", 2: "archived"}
    assert (await client.resolve("fraud@production"))["version"] == 1
    assert _serving_version(daemon.home) == "1"
    assert (daemon.home / "serving" / "fraud" / "production" / "weights.bin").read_bytes() == weights_for(1)

    items = (await client.history("fraud"))["items"]
    assert [(i["version"], i["from"], i["to"], i["kind"]) for i in items] == [
        (1, "none", "production", "transition"),
        (1, "production", "archived", "replaced"),
        (2, "none", "production", "transition"),
        (2, "production", "archived", "rollback"),
        (1, "archived", "production", "rollback"),
    ]
    assert items[-1]["reason"] == items[-2]["reason"] == "bad p99"
    # The rollback is one transaction: both of its rows carry the same instant.
    assert items[-1]["ts"] == items[-2]["ts"]

    v1_promoted, v2_promoted, rolled_back = _epoch(items[0]["ts"]), _epoch(items[2]["ts"]), _epoch(items[4]["ts"])
    between = _iso((v2_promoted + rolled_back) / 2)
    then = modelreg("history", "fraud", "--at", between, check=True)
    assert "production v2" in then.stdout, then.stdout
    snapshot = json.loads(modelreg("history", "fraud", "--at", between, "--json", check=True).stdout)["at"]
    assert snapshot["production"] == 2
    before = modelreg("history", "fraud", "--at", _iso(v1_promoted - 5), check=True)
    assert "production nothing" in before.stdout, before.stdout
    after = json.loads(modelreg("history", "fraud", "--at", _iso(time.time() + 1), "--json", check=True).stdout)
    assert after["at"]["production"] == 1

    # Rolling back again goes back to v2 (the version that was production before v1).
    again = await client.rollback("fraud", reason="p99 was a monitoring glitch")
    assert (again["from"], again["to"]) == (1, 2)
    assert await versions.stages() == {1: "archived", 2: "production"}


async def test_rollback_refuses_a_target_whose_files_were_tampered_with(daemon, modelreg, client, versions: Versions):
    v1 = await versions.add(1)
    await versions.add(2)
    await client.promote("fraud@1", reason="first")
    await client.promote("fraud@2", reason="second")
    last_event = (await client.events(limit=1))["last_id"]

    weights = next(f for f in v1["files"] if f["path"] == "weights.bin")
    blob = daemon.home / "blobs" / "sha256" / weights["sha256"][:2] / weights["sha256"][2:]
    assert blob.read_bytes() == weights_for(1)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF
    blob.write_bytes(bytes(data))

    refused = modelreg("rollback", "fraud", "--reason", "bad p99")
    assert refused.returncode == 1, refused
    assert "weights.bin" in refused.stderr and "damaged" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Nothing changed: stages, the serving link, the event log.
    assert await versions.stages() == {1: "archived", 2: "production"}
    assert _serving_version(daemon.home) == "2"
    assert (await client.events(limit=1))["last_id"] == last_event
    assert [i["kind"] for i in (await client.history("fraud"))["items"]].count("rollback") == 0
