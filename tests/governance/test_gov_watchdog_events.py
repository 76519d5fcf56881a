"""Watchdogs without a rollback: what fires and what does not, once per breach; hooks see it.

Each negative is checked the way the log can show it: records that must not fire come first,
then a breach that must; the one ``watchdog.fired`` that follows names exactly the breach's
records, so none of the earlier ones fired (evaluation follows commit order per model).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gov_support import MODEL, register
from modelreg.shared.sync_client import SyncClient
from test_gov_watchdog_rollback import fired, monitor, production
from waiting import wait_until

RULE = "monitoring:auc < 0.85 for 3 records"


class Receiver:
    """A real webhook receiver on loopback: the JSON bodies it was sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_only_n_new_bad_monitoring_records_of_the_key_on_production_fire(daemon, admin: SyncClient, tmp_path,
                                                                         receiver: Receiver):
    for n in (1, 2):
        register(admin, tmp_path / "src", n)
    admin.promote(f"{MODEL}@1", reason="first")
    admin.promote(f"{MODEL}@2", reason="second")
    register(admin, tmp_path / "src", 3)
    admin.promote(f"{MODEL}@3", "staging", reason="candidate")
    hook = admin.request("POST", "/v1/hooks", body={"kind": "webhook", "target": receiver.url,
                                                    "events": "watchdog.*"})
    wid = admin.add_watchdog(MODEL, RULE)["id"]  # no --rollback: the event only

    monitor(admin, 0.91, 0.93, 0.92)                        # good records
    monitor(admin, 0.5, 0.5, 0.5, ref=f"{MODEL}@3")         # bad, on the staging version
    monitor(admin, 0.5, 0.5, 0.5, ref=f"{MODEL}@1")         # bad, on a former production version
    monitor(admin, 0.5, 0.5, 0.5, source="offline")         # bad, offline evaluations
    monitor(admin, 0.5, 0.5, 0.5, key="recall")             # bad, another key
    monitor(admin, 0.5, 0.5, 0.9, 0.5, 0.5)                 # never three bad in a row
    monitor(admin, 0.84)                                    # the third bad one in a row: it fires
    first = wait_until(lambda: fired(admin), 10, "the watchdog.fired event")
    assert len(first) == 1
    assert (first[0]["version"], first[0]["data"]["observed"]) == (2, [0.5, 0.5, 0.84])
    assert first[0]["data"]["rolled_back"] is False
    assert first[0]["data"]["why"] == "this watchdog only raises the event (add it with --rollback to roll back)"
    assert production(admin) == 2

    # A trip per breach: the records that fired never count again; three new bad ones do.
    monitor(admin, 0.83, 0.82)
    monitor(admin, 0.81)
    second = wait_until(lambda: fired(admin)[1:], 10, "the second breach's event")
    assert [e["data"]["observed"] for e in fired(admin)] == [[0.5, 0.5, 0.84], [0.83, 0.82, 0.81]]
    assert second[0]["data"]["trip"] != first[0]["data"]["trip"]

    # Hooks see them (and the watchdog.added before them), as they see any event.
    wait_until(lambda: len(receiver.bodies) >= 3, 15, "three webhook deliveries")
    got = sorted(receiver.bodies, key=lambda b: b["id"])  # deliveries may overlap
    assert [(b["kind"], b["data"]["id"], b["data"].get("observed")) for b in got] == [
        ("watchdog.added", wid, None), ("watchdog.fired", wid, [0.5, 0.5, 0.84]),
        ("watchdog.fired", wid, [0.83, 0.82, 0.81])]
    deliveries = admin.request("GET", f"/v1/hooks/{hook['id']}/deliveries")["items"]
    assert sorted(d["event"] for d in deliveries) == ["watchdog.added", "watchdog.fired", "watchdog.fired"]
    assert admin.watchdogs(MODEL)[0]["state"] == "tripped"


def test_a_watchdog_fires_on_records_already_there_and_says_when_there_is_nowhere_to_go(daemon, admin, tmp_path):
    register(admin, tmp_path / "src", 1)
    admin.promote(f"{MODEL}@1", reason="only one")
    monitor(admin, 0.1, 0.2, 0.3)
    admin.add_watchdog(MODEL, "monitoring:auc <= 0.3 for 3 records", rollback=True)
    event = wait_until(lambda: fired(admin), 10, "the watchdog.fired of records recorded before it")[0]
    assert event["data"]["observed"] == [0.1, 0.2, 0.3]
    assert event["data"]["why"] == f"no version to roll back to: {MODEL} has had no other production version"
    assert production(admin) == 1
