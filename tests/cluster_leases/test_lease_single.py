"""One daemon: on SQLite (the home's only daemon) every watch is simply held, with no lease
written; the lease timing from the environment is checked at start-up, in one line."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

import pytest

from daemon_process import daemon_env


@pytest.mark.sqlite_only("on SQLite the one daemon holds every watch without a lease row")
def test_on_sqlite_the_daemon_holds_every_watch_without_writing_a_lease(daemon, home, modelreg, tmp_path):
    modelreg("watch", "add", str(tmp_path / "inbox"), check=True)
    [w] = json.loads(modelreg("watch", "list", "--json", check=True).stdout)
    host, pid, _ = w["owner"].split(":")
    assert (host, int(pid), w["active"], w["lease_expires_at"]) == (socket.gethostname(), daemon.proc.pid, True, None)
    assert "watching" in modelreg("watch", "list", check=True).stdout
    db = sqlite3.connect(home / "registry.db")
    try:
        assert db.execute("SELECT (SELECT count(*) FROM watch_leases), (SELECT count(*) FROM daemons)").fetchone() == (0, 0)
    finally:
        db.close()


@pytest.mark.parametrize("env, message", [
    ({"MODELREG_WATCH_LEASE": "soon"}, "MODELREG_WATCH_LEASE must be a number of seconds between 0 and 86400, not 'soon'"),
    ({"MODELREG_WATCH_LEASE": "-3"}, "MODELREG_WATCH_LEASE must be a number of seconds"),
    ({"MODELREG_WATCH_LEASE": "3", "MODELREG_WATCH_RENEW": "5"},
     "MODELREG_WATCH_RENEW (5s) must be shorter than MODELREG_WATCH_LEASE (3s)"),
])
def test_a_bad_lease_timing_stops_the_daemon_with_one_line(tmp_path, env, message):
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-m", "modelreg.daemon", "--home", str(home), "--listen", "127.0.0.1:0"],
                          env={**daemon_env(home), **env}, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    assert len(errors) == 1 and message in errors[0], done.stderr
