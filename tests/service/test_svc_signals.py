"""Issue 15, acceptance 1: `modelreg daemon --foreground` is the daemon's own process, so a
signal to that pid (from a supervisor, a container runtime, a shell script) stops the daemon
cleanly: port free, lock released, no modelreg process left, exit status 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from urllib.parse import urlsplit

import pytest

from modelreg.shared.launcher import answers
from svc_support import assert_left_nothing, lock_free, modelreg_processes, start_foreground


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_the_foreground_command_stops_the_daemon_and_leaves_nothing(home, sig):
    fg = start_foreground(home)
    info = json.loads((home / "daemon.json").read_text())
    port = urlsplit(info["url"]).port
    assert info["pid"] == fg.proc.pid, "the command's pid is the daemon's: nothing runs in a child"
    assert len(modelreg_processes(home)) == 1, modelreg_processes(home)

    fg.proc.send_signal(sig)
    try:
        status = fg.proc.wait(15)
    except subprocess.TimeoutExpired:
        fg.proc.kill()
        raise AssertionError(f"the daemon did not stop within 15 s of {sig.name}:\n{fg.output}") from None

    assert status == 0, fg.output
    assert_left_nothing(home, port)
    assert not answers(info["url"])
    assert f"stopping ({sig.name})" in fg.output and "modelreg daemon stopped" in fg.output, fg.output
    # The next start on the same home is not refused (what a supervisor's restart does).
    again = start_foreground(home)
    again.proc.terminate()
    assert again.proc.wait(15) == 0, again.output


def test_a_start_up_failure_exits_non_zero_with_one_line(home):
    """A second daemon on a locked home: a supervisor sees a failure (and restarts it), not a 0."""
    first = start_foreground(home)
    try:
        second = start_foreground(home, wait=False)
        status = second.proc.wait(30)
        assert status != 0
        errors = [line for line in second.output.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and "already running" in errors[0], second.output
        assert "Traceback" not in second.output
    finally:
        first.proc.terminate()
        assert first.proc.wait(15) == 0, first.output


def damaged_sqlite_file(home) -> dict[str, str]:
    (home / "registry.db").write_bytes(b"\x00not a database" * 512)
    return {}


def unreachable_postgres(home) -> dict[str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    return {"MODELREG_DATABASE": f"postgresql://registry@127.0.0.1:{port}/modelreg"}


@pytest.mark.parametrize("break_it", [
    pytest.param(damaged_sqlite_file, marks=pytest.mark.sqlite_only("a damaged SQLite file makes the failure")),
    unreachable_postgres,
], ids=["damaged-sqlite-file", "unreachable-postgres"])
def test_a_daemon_that_cannot_open_its_database_exits_instead_of_hanging(home, break_it):
    """A start-up step that fails part-way must not leave the process alive (a supervisor would
    wait on it forever instead of restarting it or reporting the failure)."""
    home.mkdir(parents=True)
    fg = start_foreground(home, env=break_it(home), wait=False)
    try:
        status = fg.proc.wait(30)
    except subprocess.TimeoutExpired:
        fg.proc.kill()
        raise AssertionError(f"the daemon neither served nor exited within 30 s:\n{fg.output}") from None
    assert status != 0
    assert any(" ERROR " in line for line in fg.output.splitlines()), fg.output
    assert lock_free(home) and not modelreg_processes(home)
