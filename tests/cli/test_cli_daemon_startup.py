"""Daemon start-up that tells the truth (issue 8 item 8): an autostart says so once, CI can turn
it off, and `daemon --listen` never pretends a daemon elsewhere is the one asked for."""

from __future__ import annotations

import json
import socket

import pytest


@pytest.fixture
def stop_daemon(modelreg):
    yield
    modelreg("daemon", "--stop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_autostart_is_announced_once_on_stderr(home, modelreg, stop_daemon):
    first = modelreg("models", "--json", check=True)
    assert json.loads(first.stdout) == []  # stdout stays one JSON document
    info = json.loads((home / "daemon.json").read_text())
    announced = [line for line in first.stderr.splitlines() if "started a modelreg daemon" in line]
    assert len(announced) == 1
    assert str(home) in announced[0] and f"pid {info['pid']}" in announced[0]
    assert "stop it with `modelreg daemon --stop`" in announced[0]  # MODELREG_HOME is this home here
    second = modelreg("models", check=True)
    assert "started" not in second.stderr


@pytest.mark.parametrize("how", ["env", "flag before", "flag after"])
def test_no_autostart_fails_with_exit_5_and_the_hint(home, modelreg, how):
    args, env = ["models"], {}
    if how == "env":
        env["MODELREG_NO_AUTOSTART"] = "1"
    elif how == "flag before":
        args = ["--no-autostart", "models"]
    else:
        args = ["models", "--no-autostart"]
    r = modelreg(*args, env=env)
    assert r.returncode == 5, r.stderr
    assert "starting one is turned off" in r.stderr and f"modelreg daemon --home {home}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (home / "daemon.json").exists(), "no daemon was started"


def test_daemon_listen_elsewhere_names_the_running_one(home, modelreg, stop_daemon):
    port = free_port()
    started = json.loads(modelreg("daemon", "--listen", f"127.0.0.1:{port}", "--json", check=True).stdout)
    assert started["url"] == f"http://127.0.0.1:{port}" and started["pid"]
    other = free_port()
    r = modelreg("daemon", "--listen", f"127.0.0.1:{other}")
    assert r.returncode == 1
    assert f"already running at http://127.0.0.1:{port}" in r.stderr and f"pid {started['pid']}" in r.stderr
    assert f"127.0.0.1:{other}" in r.stderr
    same = json.loads(modelreg("daemon", "--listen", f"127.0.0.1:{port}", "--json", check=True).stdout)
    assert same["already_running"] is True


def test_home_after_the_daemon_command(tmp_path, modelreg):
    other_home = tmp_path / "other-home"
    r = modelreg("daemon", "--home", str(other_home), "--listen", "127.0.0.1:0", check=True)
    try:
        assert str(other_home) in r.stdout
        assert (other_home / "daemon.json").exists()
        status = json.loads(modelreg("status", "--home", str(other_home), "--json", check=True).stdout)
        assert status["home"] == str(other_home)
    finally:
        modelreg("daemon", "--stop", "--home", str(other_home), check=True)
