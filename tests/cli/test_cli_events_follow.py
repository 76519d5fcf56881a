"""`modelreg events --follow`: live lines (NDJSON with --json), Ctrl-C exits 130 without a word,
and "reconnecting" appears only when the stream really dropped."""

from __future__ import annotations

import json
import signal

from cli_helpers import Running


def register(modelreg, tmp_path, name: str = "fraud") -> None:
    model = tmp_path / f"{name}.dat"
    model.write_bytes(b"m" * 100)
    modelreg("register", str(model), "--name", name, check=True)


def test_ctrl_c_exits_130_quietly(daemon, modelreg, tmp_path):
    register(modelreg, tmp_path)
    follow = Running(daemon.home, "events", "--follow")
    try:
        follow.wait_for(lambda: any("version.ready" in line for line in follow.stdout), what="the existing events")
        modelreg("metric", "fraud@1", "auc=0.9", check=True)
        follow.wait_for(lambda: any("metric.recorded" in line for line in follow.stdout), what="the live event")
        follow.proc.send_signal(signal.SIGINT)
        assert follow.finish() == 130
    finally:
        follow.kill()
    assert follow.stderr == [], "no traceback, no 'reconnecting', nothing"


def test_follow_json_is_ndjson(daemon, modelreg, tmp_path):
    register(modelreg, tmp_path)
    follow = Running(daemon.home, "events", "--follow", "--json", "--limit", "1")
    try:
        follow.wait_for(lambda: len(follow.stdout) >= 1, what="the latest event")
        modelreg("metric", "fraud@1", "auc=0.9", check=True)
        follow.wait_for(lambda: len(follow.stdout) >= 2, what="the live event")
        follow.proc.send_signal(signal.SIGINT)
        assert follow.finish() == 130
    finally:
        follow.kill()
    records = [json.loads(line) for line in follow.stdout]  # one object per line
    assert records[0]["kind"] == "version.ready" and records[1]["kind"] == "metric.recorded"
    assert records[1]["data"]["metrics"] == {"auc": 0.9}


def test_a_stream_that_really_drops_says_reconnecting(daemon, modelreg, tmp_path):
    register(modelreg, tmp_path)
    follow = Running(daemon.home, "events", "--follow")
    try:
        follow.wait_for(lambda: any("version.ready" in line for line in follow.stdout), what="the existing events")
        daemon.stop()
        follow.wait_for(lambda: any("reconnecting" in line for line in follow.stderr), what="the reconnect notice")
        follow.proc.send_signal(signal.SIGINT)
        assert follow.finish() == 130
    finally:
        follow.kill()
