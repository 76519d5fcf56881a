"""Starting a real daemon process for tests (imported by conftest and by tests).

Start and stop go through ``modelreg.shared.launcher``, the one implementation the CLI, the
TUI and the demo use too.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelreg.shared.config import ServerTls
from modelreg.shared.errors import Unavailable
from modelreg.shared.launcher import spawn_daemon, stop_daemon, wait_for_daemon

import team_backend

LOG = "test-daemon.log"


@dataclass
class DaemonProcess:
    home: Path
    proc: subprocess.Popen
    url: str

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        # Only this process: a test may have started another daemon on the same home since.
        stop_daemon(self.home, self.proc, restarted=False)


def start_daemon(home: Path, timeout: float | None = None, env: dict[str, str] | None = None,
                 tls: ServerTls | None = None) -> DaemonProcess:
    """Start `python -m modelreg.daemon` on a free loopback port and wait until it answers
    (``env``: extra variables for the daemon, e.g. MODELREG_MLFLOW_ROOTS; ``tls``: serve https)."""
    if timeout is None:  # a daemon on PostgreSQL + S3 checks both servers before it answers
        timeout = 60.0 if team_backend.team() else 20.0
    home.mkdir(parents=True, exist_ok=True)
    (home / "daemon.json").unlink(missing_ok=True)
    log = home / LOG
    proc = spawn_daemon(home, "127.0.0.1:0", env={**daemon_env(home), **(env or {})}, log=log, detach=False,
                        tls=tls)
    try:
        url = wait_for_daemon(home, proc, timeout, log=log, probe=False, kill=True)
    except Unavailable as exc:
        raise RuntimeError(f"{exc.message}\n{log.read_text(errors='replace')[-2000:]}") from None
    return DaemonProcess(home, proc, url)


def daemon_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env["MODELREG_HOME"] = str(home)
    env["COLUMNS"] = "200"
    env.update(team_backend.env_for(home))  # PostgreSQL (+ S3) when the run says so
    return env
