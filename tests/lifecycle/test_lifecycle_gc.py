"""Retention and gc (issue 3, acceptance 8): production and the last three former production
versions keep their artifacts whatever their age; an old archived version beyond them goes."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from lifecycle_support import Versions, connect_db, weights_for

YEAR = 365 * 86400


def blob(home: Path, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return home / "blobs" / "sha256" / sha[:2] / sha[2:]


def own_files(number: int) -> list[bytes]:
    return [f"{number}\n".encode(), weights_for(number)]


def age_everything(home: Path, seconds: float = YEAR) -> None:
    """Make every version look registered and moved a year ago (a separate sqlite3 connection)."""
    then = time.time() - seconds
    with connect_db(home) as db:
        db.execute("UPDATE versions SET created_at = ?, stage_changed_at = ?", (then, then))


async def test_gc_keeps_production_and_the_last_three_former_production_whatever_their_age(
        daemon, modelreg, client, versions: Versions):
    shared_2_4, shared_1_7, shared_5_7 = b"tokenizer of v2 and v4", b"notes of v1 and v7", b"calibration of v5 and v7"
    extras = {1: {"notes.txt": shared_1_7}, 2: {"tokenizer.json": shared_2_4}, 4: {"tokenizer.json": shared_2_4},
              5: {"calib.bin": shared_5_7}, 7: {"notes.txt": shared_1_7, "calib.bin": shared_5_7}}
    for n in range(1, 8):
        await versions.add(n, extra=extras.get(n))
    for n in range(1, 7):
        await client.promote(f"fraud@{n}", reason=f"release {n}")
    await client.archive("fraud@7", reason="never shipped")
    assert await versions.stages() == {1: "archived", 2: "archived", 3: "archived", 4: "archived", 5: "archived",
                                       6: "production", 7: "archived"}
    age_everything(daemon.home)
    every_blob = sorted(p for p in (daemon.home / "blobs" / "sha256").rglob("*") if p.is_file())

    dry = modelreg("gc", "--dry-run")
    assert dry.returncode == 0, dry
    assert "would remove" in dry.stdout
    listed = {line.strip() for line in dry.stdout.splitlines()[1:]}
    assert listed == {"fraud@1", "fraud@2", "fraud@7"}
    assert sorted(p for p in (daemon.home / "blobs" / "sha256").rglob("*") if p.is_file()) == every_blob
    assert json.loads(modelreg("gc", "--dry-run", "--json", check=True).stdout)["versions"] == \
        ["fraud@1", "fraud@2", "fraud@7"]

    done = modelreg("gc")
    assert done.returncode == 0, done
    assert {line.strip() for line in done.stdout.splitlines()[1:]} == {"fraud@1", "fraud@2", "fraud@7"}
    home = daemon.home
    # Kept: production (v6) and the last three that left production (v5, v4, v3), byte for byte.
    for n in (3, 4, 5, 6):
        for data in own_files(n):
            assert blob(home, data).read_bytes() == data, f"fraud@{n} lost a file"
    # Gone: the files only purged versions had; a blob a kept version shares stays.
    for n in (1, 2, 7):
        for data in own_files(n):
            assert not blob(home, data).exists(), f"fraud@{n}'s file survived gc"
    assert not blob(home, shared_1_7).exists()
    assert blob(home, shared_2_4).read_bytes() == shared_2_4
    assert blob(home, shared_5_7).read_bytes() == shared_5_7
    assert not (home / "versions" / "fraud" / "1").exists()
    assert (home / "serving" / "fraud" / "production" / "weights.bin").read_bytes() == weights_for(6)

    # A second run finds nothing more; the kept versions still roll back (digests re-verified).
    again = json.loads(modelreg("gc", "--json", check=True).stdout)
    assert (again["versions"], again["blobs"]) == ([], 0)
    assert (await client.rollback("fraud", to=3, reason="oldest kept"))["to"] == 3
    assert (home / "serving" / "fraud" / "production" / "weights.bin").read_bytes() == weights_for(3)
    refused = modelreg("rollback", "fraud", "--to", "1", "--reason", "too old")
    assert refused.returncode == 1 and "gc" in refused.stderr, refused
    assert (await client.resolve("fraud@production"))["version"] == 3


async def test_a_rollback_does_not_shrink_the_three_former_production_versions_kept(
        daemon, modelreg, client, versions: Versions):
    for n in range(1, 6):
        await versions.add(n)
        await client.promote(f"fraud@{n}", reason=f"release {n}")
    await client.rollback("fraud", reason="bad p99")  # v4 is production again, v5 archived
    age_everything(daemon.home)

    # Former production versions, newest first: v5, v3, v2 (v4 is production, not former).
    plan = json.loads(modelreg("gc", "--dry-run", "--json", check=True).stdout)
    assert plan["versions"] == ["fraud@1"]
    modelreg("gc", check=True)
    for n in (2, 3, 4, 5):
        for data in own_files(n):
            assert blob(daemon.home, data).exists(), f"fraud@{n} lost its files"
    assert (await client.rollback("fraud", to=2, reason="two back"))["to"] == 2


async def test_recent_archives_are_kept_for_ninety_days(daemon, modelreg, client, versions: Versions):
    for n in range(1, 6):
        await versions.add(n)
        await client.promote(f"fraud@{n}", reason=f"release {n}")
    age_everything(daemon.home, 89 * 86400)
    plan = json.loads(modelreg("gc", "--dry-run", "--json", check=True).stdout)
    assert plan["versions"] == [] and plan["blobs"] == 0
    age_everything(daemon.home, 91 * 86400)
    plan = json.loads(modelreg("gc", "--dry-run", "--json", check=True).stdout)
    assert plan["versions"] == ["fraud@1"]
