"""Handing a watch over between two daemons of one registry: a clean stop lets go at once, a
daemon frozen past its lease loses the watch (and stops when it wakes), and a daemon that
cannot see the folder does not take it."""

from __future__ import annotations

import signal
import time

from lease_support import LEASE, drop, ready, wait_until


def test_a_clean_stop_hands_the_watch_over_without_waiting_for_the_lease(cluster):
    inbox = cluster.inbox
    long = {"MODELREG_WATCH_LEASE": "60", "MODELREG_WATCH_RENEW": "1"}
    a = cluster.start("a", **long)
    a.api.add_watch(inbox)
    b = cluster.start("b", **long)
    a_id = a.instance()
    a.daemon.stop()
    stopped = time.monotonic()
    wait_until(lambda: b.holds(inbox), 30, "daemon B to take the released watch")
    took = time.monotonic() - stopped
    print(f"released watch taken {took:.2f}s after the stop (lease 60s)")
    assert took < 30
    assert [e["data"] for e in b.events("watch.released")] == [{"path": str(inbox), "owner": a_id}]
    assert b.events("watch.taken_over") == [], "nothing was taken from a dead daemon"
    drop(inbox, "after.safetensors", seed=4)
    assert ready(b, "after", 60)["status"] == "ready"


def test_a_daemon_frozen_past_its_lease_loses_the_watch_and_stops_it_when_it_wakes(cluster):
    inbox = cluster.inbox
    a = cluster.start("a")
    a.api.add_watch(inbox)
    b = cluster.start("b")
    a_id = a.instance()
    a.daemon.proc.send_signal(signal.SIGSTOP)  # alive (its pid runs), but it renews nothing
    try:
        frozen = time.monotonic()
        wait_until(lambda: b.holds(inbox), LEASE * 4, "daemon B to take the expired lease")
        print(f"expired lease taken {time.monotonic() - frozen:.2f}s after the freeze (lease {LEASE:g}s)")
        b_id = b.watch(inbox)["owner"]
        assert [(e["data"]["previous"], e["data"]["owner"]) for e in b.events("watch.taken_over")] == [(a_id, b_id)]
        drop(inbox, "while.safetensors", seed=5)
        ready(b, "while", 60)
    finally:
        a.daemon.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: not a.holds(inbox), LEASE * 4, "the woken daemon A to stop the watch it lost")
    assert a.watch(inbox)["owner"] == b_id and b.holds(inbox)
    drop(inbox, "woken.safetensors", seed=6)
    ready(b, "woken", 60)
    wait_until(lambda: not (inbox / "woken.safetensors").exists(), 30, "the drop to leave the folder")
    assert [v["version"] for v in b.versions("while")] == [1] and [v["version"] for v in b.versions("woken")] == [1]


def test_a_daemon_that_cannot_see_the_folder_does_not_take_it(cluster, tmp_path):
    inbox = cluster.inbox
    a = cluster.start("a")
    a.api.add_watch(inbox)
    b = cluster.start("b")
    mine = tmp_path / "mine"
    b.api.add_watch(mine)
    assert b.holds(mine) and a.holds(inbox)
    away = inbox.rename(tmp_path / "away")  # not on "B's machine" any more
    a.daemon.stop()
    # Two renewals of B after A let go (its own lease moved on twice), and still nobody runs it.
    renewed = b.watch(mine)["lease_expires_at"]
    renewed = wait_until(lambda: (e := b.watch(mine)["lease_expires_at"]) != renewed and e, LEASE * 3, "a renewal")
    wait_until(lambda: b.watch(mine)["lease_expires_at"] != renewed, LEASE * 3, "another renewal")
    w = b.watch(inbox)
    assert (w["owner"], w["active"]) == (None, False)
    away.rename(inbox)
    wait_until(lambda: b.holds(inbox), LEASE * 3, "daemon B to take the watch once it sees the folder")
