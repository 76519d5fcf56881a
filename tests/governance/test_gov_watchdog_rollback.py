"""Watchdogs that roll production back (issue 12, acceptance 5), against a real daemon.

Three bad monitoring records on the production version roll it back within a second, with a
reason naming the rule and the values; inside the cooldown a trip raises the event without a
rollback; after the cooldown a trip rolls back past every version that tripped the watchdog.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from gov_support import MODEL, register
from modelreg.shared.sync_client import SyncClient
from waiting import wait_until

RULE = "monitoring:auc < 0.85 for 3 records"
BAD = (0.81, 0.80, 0.79)


def three_in_production(admin: SyncClient, root: Path) -> None:
    """fraud@1, @2, @3 each promoted in turn: v3 in production, v1 and v2 former production versions."""
    for n in (1, 2, 3):
        register(admin, root, n)
        admin.promote(f"{MODEL}@{n}", reason=f"release {n}")


def monitor(client: SyncClient, *values: float, ref: str = f"{MODEL}@production", key: str = "auc",
            source: str = "monitoring") -> None:
    for value in values:
        client.record_metrics(ref, {key: value}, source=source)


def fired(client: SyncClient) -> list[dict]:
    return client.events(kind="watchdog.fired", model=MODEL)["items"]


def production(client: SyncClient) -> int | None:
    return client.model(MODEL)["production"]


def test_three_bad_records_roll_back_within_a_second_and_the_cooldown_holds(daemon, admin, modelreg, tmp_path):
    three_in_production(admin, tmp_path / "src")
    added = modelreg("watchdog", "add", MODEL, RULE, "--rollback", "--json", check=True)
    watchdog = json.loads(added.stdout)
    assert (watchdog["rule"], watchdog["rollback"], watchdog["cooldown"], watchdog["state"]) == (RULE, True, 3600, "ok")
    wid = watchdog["id"]

    monitor(admin, *BAD[:2])
    monitor(admin, 0.95, ref=f"{MODEL}@2")  # another version's records are not production's
    monitor(admin, BAD[2])
    replied = time.monotonic()  # the third record's reply: the rollback must follow within a second
    wait_until(lambda: production(admin) == 2, 1.0 - (time.monotonic() - replied), "the rollback to v2")

    reason = f"watchdog {wid} fired: {RULE} (observed 0.81, 0.8, 0.79)"
    last = admin.history(MODEL)["items"][-2:]
    assert [(h["version"], h["from"], h["to"], h["kind"]) for h in last] == [
        (3, "production", "archived", "rollback"), (2, "archived", "production", "rollback")]
    assert {(h["actor"], h["reason"]) for h in last} == {(f"watchdog:{wid}", reason)}
    event = wait_until(lambda: fired(admin), 10, "the watchdog.fired event")[0]
    assert (event["version"], event["actor"]) == (3, f"watchdog:{wid}")
    assert {k: event["data"][k] for k in ("id", "rule", "observed", "rolled_back", "to", "why")} == {
        "id": wid, "rule": RULE, "observed": list(BAD), "rolled_back": True, "to": 2, "why": None}
    # The serving link followed, as for a person's rollback.
    assert (daemon.home / "serving" / MODEL / "production" / "version.txt").read_text() == "2\n"

    # A fourth bad record (on v2 now) is not a breach of v2 yet; v3's records never count again.
    monitor(admin, 0.70)
    monitor(admin, 0.70, ref=f"{MODEL}@3")
    monitor(admin, 0.71, 0.72)  # three on v2: it trips, inside the cooldown
    second = wait_until(lambda: fired(admin)[1:], 10, "v2's trip")[0]
    assert second["version"] == 2
    assert second["data"]["observed"] == [0.70, 0.71, 0.72]
    assert second["data"]["rolled_back"] is False and second["data"]["to"] is None
    assert second["data"]["why"].startswith("cooldown until ")
    assert production(admin) == 2
    assert [h["kind"] for h in admin.history(MODEL)["items"]].count("rollback") == 2  # the one rollback's two rows

    listed = modelreg("watchdog", "list", MODEL, check=True).stdout
    assert "tripped" in listed and "v2 tripped it" in listed and "cooldown until" in listed
    view = admin.watchdogs(MODEL)[0]
    assert (view["state"], view["production"], view["tripped"]) == ("tripped", 2, [2, 3])
    assert [(t["version"], t["rolled_back"], t["to"]) for t in view["trips"]] == [(2, False, None), (3, True, 2)]


def test_after_the_cooldown_a_trip_rolls_back_past_the_versions_that_tripped(daemon, admin, tmp_path):
    three_in_production(admin, tmp_path / "src")
    wid = admin.add_watchdog(MODEL, RULE, rollback=True, cooldown="1s")["id"]
    monitor(admin, *BAD)
    wait_until(lambda: production(admin) == 2, 10, "the rollback to v2")
    assert admin.watchdogs(MODEL)[0]["state"] == "cooling down"
    wait_until(lambda: admin.watchdogs(MODEL)[0]["state"] == "ok", 10, "the one-second cooldown to pass")

    # v3 was production just before v2 (a plain rollback would pick it), but it tripped.
    monitor(admin, 0.60, 0.61, 0.62)
    wait_until(lambda: production(admin) == 1, 10, "the rollback to v1")
    event = wait_until(lambda: fired(admin)[1:], 10, "v2's watchdog.fired")[0]
    assert (event["version"], event["data"]["rolled_back"], event["data"]["to"]) == (2, True, 1)
    assert admin.history(MODEL)["items"][-1]["reason"] == f"watchdog {wid} fired: {RULE} (observed 0.6, 0.61, 0.62)"

    # v1 trips too, after the cooldown: every former production version tripped, nowhere to go.
    wait_until(lambda: admin.watchdogs(MODEL)[0]["state"] == "ok", 10, "the cooldown to pass again")
    monitor(admin, *BAD)
    third = wait_until(lambda: fired(admin)[2:], 10, "v1's watchdog.fired")[0]
    assert (third["version"], third["data"]["rolled_back"]) == (1, False)
    assert third["data"]["why"] == "no version to roll back to: every former production version tripped this " \
                                   "watchdog (v2, v3)"
    assert production(admin) == 1
    # No rollback happened, so the cooldown was not spent.
    assert admin.watchdogs(MODEL)[0]["cooldown_until"] is None
