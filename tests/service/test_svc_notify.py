"""Issue 15, acceptance 2: with NOTIFY_SOCKET pointing at a socket the test listens on (as
systemd does for a Type=notify unit), the daemon sends READY=1 once it answers health and
STOPPING=1 when it shuts down."""

from __future__ import annotations

import json
import signal

import pytest

from modelreg.shared.launcher import answers
from svc_support import NotifySocket, start_foreground


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract-namespace"])
def test_the_daemon_tells_the_service_manager_when_it_is_ready_and_when_it_stops(home, abstract):
    manager = NotifySocket(abstract)
    fg = start_foreground(home, env={"NOTIFY_SOCKET": manager.address}, wait=False)
    try:
        ready = manager.receive(timeout=30)
        assert ready.get("READY") == "1", ready
        url = ready["STATUS"].removeprefix("listening on ")
        # READY means "serving": health answers at once, on the URL the daemon wrote for clients.
        assert answers(url), f"READY=1 sent before {url} answers health"
        assert json.loads((home / "daemon.json").read_text())["url"] == url
        assert ready["MAINPID"] == str(fg.proc.pid)

        fg.proc.send_signal(signal.SIGTERM)
        stopping = manager.receive(timeout=15)
        assert stopping.get("STOPPING") == "1", stopping
        assert fg.proc.wait(15) == 0, fg.output
    finally:
        if fg.proc.poll() is None:
            fg.proc.kill()
        manager.close()


def test_without_a_service_manager_nothing_is_sent_and_children_do_not_inherit_the_socket(home, modelreg):
    """A command gate runs with the daemon's environment: it must not see NOTIFY_SOCKET (it could
    speak for the daemon), which the daemon takes out of its environment as sd_notify does."""
    manager = NotifySocket()
    seen = home.parent / "gate-env.txt"
    fg = start_foreground(home, env={"NOTIFY_SOCKET": manager.address}, wait=False)
    try:
        assert manager.receive(timeout=30).get("READY") == "1"
        model = home.parent / "m.bin"
        model.write_bytes(b"weights")
        modelreg("register", str(model), "--name", "m", check=True)
        modelreg("gate", "add", "m", "--stage", "staging", f"command: env > {seen}", check=True)
        modelreg("promote", "m@1", "--to", "staging", check=True)
        environment = seen.read_text()
        assert "MODELREG_MODEL=m" in environment  # the gate did run with the daemon's environment
        assert "NOTIFY_SOCKET" not in environment
    finally:
        fg.proc.terminate()
        assert fg.proc.wait(15) == 0, fg.output
        manager.close()
