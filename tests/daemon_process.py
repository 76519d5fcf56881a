"""Starting a real daemon process for tests (imported by conftest and by tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_daemon(home: Path, timeout: float = 20.0) -> DaemonProcess:
    """Start `python -m modelreg.daemon` on a free loopback port and wait until it answers."""
    home.mkdir(parents=True, exist_ok=True)
    info = home / "daemon.json"
    info.unlink(missing_ok=True)
    log = open(home / "test-daemon.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "modelreg.daemon", "--home", str(home), "--listen", "127.0.0.1:0"],
                            stdout=log, stderr=subprocess.STDOUT, env=daemon_env(home))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}: {(home / 'test-daemon.log').read_text()[-2000:]}")
        if info.exists():
            try:
                return DaemonProcess(home, proc, json.loads(info.read_text())["url"])
            except (ValueError, KeyError):
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("daemon did not start in time")


def daemon_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env["MODELREG_HOME"] = str(home)
    env["COLUMNS"] = "200"
    return env
