"""kill -9 of one of two daemons on one PostgreSQL + S3 registry, mid-registration (issue 13,
acceptance 5): the other keeps serving, no half version is left, and it takes the dead one's
drop-folder watch over within the lease time and registers the next drop."""

from __future__ import annotations

import time

from big_files import big_safetensors
from lease_support import BIG, LEASE, drop, ready, wait_until


def test_kill9_mid_registration_the_other_daemon_serves_recovers_and_takes_the_watch(cluster, tmp_path):
    inbox = cluster.inbox
    a = cluster.start("a")
    a.api.add_watch(inbox)
    b = cluster.start("b")
    assert a.holds(inbox) and not b.holds(inbox), "one daemon at a time runs a watch"
    a_id = a.instance()
    assert b.watch(inbox)["owner"] == a_id and b.watch(inbox)["lease_expires_at"] is not None

    drop(inbox, "first.safetensors", seed=1)
    assert ready(b, "first", 60)["source"] == f"drop:{inbox / 'first.safetensors'}"

    big = big_safetensors(tmp_path / "big.safetensors", BIG)
    started = a.api.register("big", path=big)
    job = started["job"]
    job = wait_until(lambda: (j := a.api.job(job["id"]))["done"] > 0 and j, 60, "the registration to start storing")
    a.daemon.kill9()
    killed = time.monotonic()
    assert job["done"] < job["total"], "the kill must land in the middle of storing"

    # B keeps serving, from the first instant: reads, and a registration of its own.
    assert [m["name"] for m in b.api.all_models()] == ["big", "first"]
    small = tmp_path / "small.safetensors"
    drop(tmp_path, small.name, seed=2)
    assert b.api.register("small", path=small, wait=True)["version"]["status"] == "ready"

    # The dead daemon's pending version is failed by B once A is known dead; never ready without its files.
    big1 = wait_until(lambda: (v := b.api.version("big@1"))["status"] != "pending" and v, LEASE * 4,
                      "big@1 to be recovered")
    assert big1["status"] == "failed" and "interrupted" in big1["status_message"]

    # B takes the watch over within the lease time, and the next drop is registered through it.
    wait_until(lambda: b.holds(inbox), LEASE * 3, "daemon B to take the watch over")
    took = time.monotonic() - killed
    print(f"watch taken over {took:.2f}s after the kill (lease {LEASE:g}s)")
    assert took < LEASE * 2, f"taken over {took:.1f}s after the kill: the lease is {LEASE:g}s"
    b_id = b.watch(inbox)["owner"]
    assert b_id != a_id
    over = b.events("watch.taken_over")
    assert [(e["data"]["previous"], e["data"]["owner"]) for e in over] == [(a_id, b_id)]

    drop(inbox, "second.safetensors", seed=3)
    second = ready(b, "second", 60)
    wait_until(lambda: not (inbox / "second.safetensors").exists(), 30, "the drop to leave the folder (move mode)")
    assert second["version"] == 1

    # No half version anywhere: every version is ready with its files in the bucket, or failed.
    states = {f"{m['name']}@{v['version']}": v["status"] for m in b.api.all_models() for v in b.versions(m["name"])}
    assert states == {"big@1": "failed", "first@1": "ready", "second@1": "ready", "small@1": "ready"}
    report = b.api.verify(wait=True)["result"]
    assert report["ok"] and report["checked"] == 3, report


def test_kill9_mid_drop_the_taker_finishes_it_once(cluster):
    inbox = cluster.inbox
    a = cluster.start("a")
    a.api.add_watch(inbox)
    b = cluster.start("b")
    part = big_safetensors(inbox / "huge.safetensors.part", BIG)
    size = part.stat().st_size
    after = a.api.events(limit=1)["last_id"] or 0
    part.rename(inbox / "huge.safetensors")
    wait_until(lambda: a.events("drop.detected", after), 60, "daemon A to take the drop")
    a.daemon.kill9()
    assert not b.events("drop.registered", after), "the kill must land while A is ingesting the drop"

    wait_until(lambda: b.holds(inbox), LEASE * 3, "daemon B to take the watch over")
    huge = ready(b, "huge", 120)
    wait_until(lambda: not (inbox / "huge.safetensors").exists(), 30, "the drop to leave the folder (move mode)")
    assert [v["version"] for v in b.versions("huge")] == [1], "registered exactly once"
    assert [e["data"]["entry"] for e in b.events("drop.registered", after)] == ["huge.safetensors"]
    assert huge["total_size"] == size
