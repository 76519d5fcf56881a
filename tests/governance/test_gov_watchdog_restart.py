"""A stop between a trip and its rollback (two writes) is completed at the next start."""

from __future__ import annotations

import time

import team_backend
from daemon_process import start_daemon
from gov_support import MODEL, register
from modelreg.daemon.services.watchdogs import INTERRUPTED
from modelreg.shared.sync_client import SyncClient
from test_gov_watchdog_rollback import fired, monitor, production
from waiting import wait_until


def test_a_trip_whose_rollback_a_stop_cut_short_gets_its_event_and_the_cooldown_back(home, tmp_path):
    daemon = start_daemon(home)
    try:
        admin = SyncClient(url=daemon.url, token=daemon.token, actor="owner@laptop")
        for n in (1, 2):
            register(admin, tmp_path / "src", n)
            admin.promote(f"{MODEL}@{n}", reason=f"release {n}")
        wid = admin.add_watchdog(MODEL, "monitoring:auc < 0.85 for 3 records", rollback=True)["id"]
        monitor(admin, 0.9)  # a record the trip below names as the newest it counted
    finally:
        daemon.stop()

    # The state a stop leaves after the trip's write and before the rollback's: the trip has
    # no event yet and the cooldown is taken.
    with team_backend.connect(home) as db:
        fired_at = time.time()
        v2, metric = db.execute("SELECT v.id, max(m.id) FROM versions v JOIN metrics m ON m.version_id = v.id "
                                "WHERE v.number = 2 GROUP BY v.id").fetchone()
        db.execute("INSERT INTO watchdog_trips (watchdog_id, version_id, observed, last_metric_id, rollback_to, "
                   "fired_at) VALUES (?, ?, '[0.8, 0.7, 0.6]', ?, 1, ?)", (wid, v2, metric, fired_at))
        db.execute("UPDATE watchdogs SET last_fired_at = ?, last_rollback_at = ? WHERE id = ?", (fired_at, fired_at, wid))

    daemon = start_daemon(home)
    try:
        admin = SyncClient(url=daemon.url, token=daemon.token, actor="owner@laptop")
        event = wait_until(lambda: fired(admin), 10, "the interrupted trip's event")[0]
        assert (event["version"], event["data"]["observed"], event["data"]["rolled_back"]) == (2, [0.8, 0.7, 0.6],
                                                                                                 False)
        assert event["data"]["why"] == INTERRUPTED
        view = admin.watchdogs(MODEL)[0]
        assert view["cooldown_until"] is None and view["trip"]["running"] is False
        assert production(admin) == 2
        # The cooldown is free again: three new bad records roll back now.
        monitor(admin, 0.5, 0.5, 0.5)
        wait_until(lambda: production(admin) == 1, 10, "the rollback to v1")
    finally:
        daemon.stop()
