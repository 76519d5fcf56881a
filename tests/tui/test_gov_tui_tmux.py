"""Acceptance 6 of issue 12, for real: `modelreg tui` in a detached tmux session against a real
daemon where a request is pending; the approve key, a reason and Enter approve it, and the
screen shows fraud@3 in production. Skipped where tmux is not installed.

tmux runs on a private socket (``-L``), so the test neither sees nor touches the user's own
tmux server, and only the server it started is killed.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Registry, fill_live
from daemon_process import start_daemon
from test_gov_tui_approvals import make_tokens, open_request
from waiting import wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

WAIT_S = 30.0  # the TUI starting in a fresh interpreter on a loaded 2-core machine


class Tmux:
    """One detached tmux session on a private server."""

    def __init__(self, socket: str, session: str = "gov") -> None:
        self.base, self.session = ["tmux", "-L", socket, "-f", "/dev/null"], session

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=15, env=env)
        assert done.returncode == 0, f"tmux {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    def start(self, command: list[str], env: dict[str, str], width: int = 120, height: int = 40) -> None:
        # The server starts with this environment, which the command inherits; remain-on-exit keeps
        # a crashed TUI's last screen (its traceback) for the failure message.
        self.run("start-server", ";", "set-option", "-g", "remain-on-exit", "on", ";",
                 "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), shlex.join(command),
                 env=env)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.session, "-l", text)

    def wait_for(self, *words: str, absent: tuple[str, ...] = (), what: str = "") -> str:
        def shows() -> str | None:
            screen = self.screen()
            ok = all(w in screen for w in words) and not any(w in screen for w in absent)
            return screen if ok else None

        try:
            return wait_until(shows, WAIT_S, what or f"{words} on screen", step=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen was:\n{self.screen()}") from None

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=15)


@pytest.fixture
def pending(tmp_path: Path):
    """A registry where ci asked for fraud@3 → production and one approval is needed; lead's token file."""
    daemon = start_daemon(tmp_path / "registry")
    registry = Registry(daemon, tmp_path)
    try:
        registry.run(lambda c: fill_live(c, tmp_path / "blob.bin"))
        # fraud first in the models list, where the cursor starts: Enter opens it, no navigation to race.
        registry.run(lambda c: c.rename_model("churn", "retention", reason="listed after fraud"))
        secrets = asyncio.run(make_tokens(registry, "ci", "lead"))
        registry.run(lambda c: c.add_gate("approvals >= 1", stage="production", model="fraud"))
        request = asyncio.run(open_request(registry, secrets["ci"], reason="nightly retrain"))
        token_file = tmp_path / "lead.token"
        token_file.write_text(secrets["lead"] + "\n")
        token_file.chmod(0o600)
        yield registry, request, token_file
    finally:
        daemon.stop()


def test_gov_tui_in_tmux_the_approve_key_with_a_reason_approves_a_pending_request(pending, tmp_path: Path):
    registry, request, token_file = pending
    modelreg = Path(sys.executable).with_name("modelreg")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "TMUX"))}
    env.update(TERM="xterm-256color", HOME=str(tmp_path), MODELREG_NO_AUTOSTART="1")
    tmux = Tmux(f"modelreg-gov-{os.getpid()}")
    tmux.start([str(modelreg), "--home", str(registry.home), "--token-file", str(token_file), "tui"], env)
    try:
        # Each key only once the screen shows what the one before did.
        tmux.wait_for("connected", " fraud ", " retention ", "registered", what="the models screen")
        tmux.keys("Enter")
        before = tmux.wait_for(f"#{request['id']} fraud@3 → production by ci, 0/1 approvals", "A approve",
                               "production v1", what="the pending request on the model screen")
        tmux.keys("A")
        tmux.wait_for("asked by ci", "nightly retrain", "reason (required)", what="the approval dialog")
        tmux.type("checked the eval report")
        tmux.keys("Enter")
        # The model line names v3 in production; the request has left the screen, and so have the keys.
        after = tmux.wait_for("production v3", absent=("0/1 approvals", "A approve", "asked by ci"),
                              what="fraud@3 in production")
    finally:
        tmux.kill()
    print("\n--- before ---\n" + before + "\n--- after ---\n" + after)
    closed = registry.run(lambda c: c.approval_request(request["id"]))
    assert closed["status"] == "approved"
    assert [(a["identity"], a["reason"]) for a in closed["approvals"]] == [("lead", "checked the eval report")]
