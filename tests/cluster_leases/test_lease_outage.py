"""A daemon that loses its PostgreSQL stops running its watches before its leases can have run
out for another daemon, and runs them again once the database is back: a drop made during the
outage is registered then."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from daemon_process import LOG
from lease_support import LEASE, Cluster, drop, ready, wait_until
from modelreg.shared.errors import ModelregError
from pg_server import PgServer, find_bindir


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own, to stop and start (not the session's)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql")
    server = PgServer(bindir)
    server.start()
    yield server
    server.stop()


def test_without_its_database_a_daemon_stops_its_watch_and_takes_it_back_after(own_pg, tmp_path):
    cluster = Cluster(tmp_path, {"MODELREG_DATABASE": asyncio.run(own_pg.create_database()),
                                 "MODELREG_WATCH_LEASE": f"{LEASE:g}", "MODELREG_WATCH_RENEW": "1"})
    try:
        a = cluster.start("a")
        a.api.add_watch(cluster.inbox)
        assert a.holds(cluster.inbox)
        log = a.daemon.home / LOG
        own_pg.halt()
        wait_until(lambda: "watch leases lost; stopping 1 watch(es)" in log.read_text(), LEASE * 4,
                   "the daemon to stop its watch without the database")
        drop(cluster.inbox, "during.safetensors", seed=7)
        own_pg.resume()

        def holds() -> bool:
            try:
                return a.holds(cluster.inbox)
            except ModelregError:  # the daemon is still reconnecting: 503
                return False
        wait_until(holds, 60, "the daemon to run its watch again")
        assert ready(a, "during", 60)["status"] == "ready"
    finally:
        cluster.close()
