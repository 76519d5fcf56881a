"""Issue 15, acceptance 4 and the log itself: the background daemon writes HOME/logs/daemon.log,
one line per event an operator cares about, and `modelreg logs [-f]` shows it: a drop taken and
one failed, a refused gate, a failing hook (a webhook to a closed port), start, listen and stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from daemon_process import daemon_env
from svc_support import free_port, start_foreground
from waiting import wait_until


class Follower:
    """`modelreg logs -f` running in the background; its output collected as it comes."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "modelreg.tui.cli", "logs", "-f", "-n", "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=daemon_env(home))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),
                                        daemon=True)
        self._reader.start()
        self.wait_for(".")  # it has shown the last line: it follows from there on

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        return wait_until(lambda: next((line for line in self.lines if re.search(pattern, line)), None), timeout,
                          f"`modelreg logs -f` to print {pattern!r}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(10)
        self._reader.join(5)
        return status


@pytest.fixture
def background(home, modelreg):
    """A daemon started the way a user starts it: `modelreg daemon`, in the background."""
    modelreg("daemon", "--listen", "127.0.0.1:0", check=True)
    yield home
    modelreg("daemon", "--stop")


def logs(modelreg, *args: str) -> str:
    return modelreg("logs", *args, check=True).stdout


def test_logs_show_a_drop_a_refused_gate_and_a_failing_hook(background, modelreg, tmp_path):
    home = background
    follower = Follower(home)
    inbox = tmp_path / "inbox"
    modelreg("watch", "add", str(inbox), "--settle", "0.5", check=True)
    inbox.mkdir(exist_ok=True)
    save_file({"w": np.ones((4, 8), dtype=np.float32)}, str(inbox / "fraud.safetensors.part"))
    os.rename(inbox / "fraud.safetensors.part", inbox / "fraud.safetensors")
    (inbox / "broken.safetensors").write_bytes(b"\xff" * 64)  # not a safetensors file: the drop fails

    closed = free_port()  # nothing listens there: every delivery fails
    modelreg("hook", "add", f"http://127.0.0.1:{closed}/hook", "--events", "stage.*", check=True)
    wait_until(lambda: modelreg("versions", "fraud").returncode == 0, 20, "the drop to be registered", step=0.5)
    modelreg("gate", "add", "fraud", "--stage", "production", "auc >= 0.9", check=True)
    refused = modelreg("promote", "fraud@1", "--to", "production")
    assert refused.returncode == 3, refused.stderr
    modelreg("promote", "fraud@1", "--to", "staging", check=True)  # the hook fires, and fails

    taken = follower.wait_for(r"INFO .*drop fraud\.safetensors → fraud@1")
    failed = follower.wait_for(r"WARNING .*drop broken\.safetensors failed")
    gate = follower.wait_for(r"INFO .*refused by gates: .*fraud@1 did not pass the production gates: auc >= 0\.9")
    hook = follower.wait_for(r"WARNING .*hook \S+ delivery of event \d+ failed \(attempt 1\)")
    assert follower.interrupt() == 130

    shown = logs(modelreg)
    for line in (taken, failed, gate, hook):
        assert line in shown.splitlines(keepends=True), line
    assert re.search(r"INFO modelreg\.daemon: modelreg daemon \S+ starting \(home .*, pid \d+, "
                     r"(SQLite|database postgresql://\S+)\)", shown)
    assert re.search(r"INFO modelreg\.daemon: modelreg daemon listening on http://127\.0\.0\.1:\d+", shown)
    assert "Traceback" not in shown
    assert len(logs(modelreg, "-n", "3").splitlines()) == 3

    modelreg("daemon", "--stop", check=True)
    stopped = logs(modelreg, "-n", "2").splitlines()
    assert "stopping (SIGTERM)" in stopped[0] and "modelreg daemon stopped" in stopped[1], stopped


def test_the_log_rotates_and_logs_follow_goes_on_across_the_rotation(home, modelreg):
    """Every request counts as slow here, so each one writes a line: 60 requests through a 2 KiB log."""
    env = {"MODELREG_LOG_MAX_BYTES": "2048", "MODELREG_SLOW_REQUEST_S": "0.000001"}
    modelreg("daemon", "--listen", "127.0.0.1:0", check=True, env=env)
    try:
        url = json.loads((home / "daemon.json").read_text())["url"]
        follower = Follower(home)
        for i in range(60):
            try:
                urllib.request.urlopen(f"{url}/v1/nothing-{i}", timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401  # no token: refused, and still one line in the log
        follower.wait_for(r"slow request: GET /v1/nothing-59 → 401")
        assert follower.interrupt() == 130
        seen = [int(m.group(1)) for line in follower.lines if (m := re.search(r"/v1/nothing-(\d+) ", line))]
        assert seen == list(range(60)), "each line once, in order, none lost when the file rotated"
        logs_dir = home / "logs"
        assert (logs_dir / "daemon.log.1").exists()
        assert (logs_dir / "daemon.log").stat().st_size <= 2048
        assert "/v1/nothing-59 " in logs(modelreg, "-n", "1")
        assert len(logs(modelreg, "-n", "40").splitlines()) == 40  # reaches into daemon.log.1
    finally:
        modelreg("daemon", "--stop")


def test_json_lines_for_a_log_shipper(home):
    fg = start_foreground(home, "--log-format", "json")
    fg.proc.terminate()
    assert fg.proc.wait(15) == 0
    entries = [json.loads(line) for line in fg.output.splitlines()]  # every line is one JSON object
    assert [e["message"].split(" (")[0] for e in entries if e["logger"] == "modelreg.daemon"][-2:] == [
        "stopping", "modelreg daemon stopped"]
    assert {"ts", "level", "logger", "message"} <= set(entries[0]) and entries[0]["level"] == "info"
    assert entries[0]["ts"].endswith("Z")


def test_the_background_daemon_logs_json_when_asked(home, modelreg):
    modelreg("daemon", "--listen", "127.0.0.1:0", "--log-format", "json", check=True)
    modelreg("daemon", "--stop", check=True)
    entries = [json.loads(line) for line in logs(modelreg).splitlines()]
    assert [e["message"] for e in entries][-1] == "modelreg daemon stopped"
    assert any(e["message"].startswith("modelreg daemon listening on http://127.0.0.1:") for e in entries)


def test_logs_without_a_log_file_says_where_the_log_is(home, modelreg):
    home.mkdir()
    done = modelreg("logs")
    assert done.returncode == 4
    assert f"no daemon log at {home}/logs/daemon.log" in done.stderr and "journalctl" in done.stderr
    bad = modelreg("daemon", "--foreground", "--log-format", "xml")
    assert bad.returncode == 2 and "xml" in bad.stderr
