"""Helpers for the running-as-a-service tests (issue 15): a real `modelreg daemon --foreground`
process, a real NOTIFY_SOCKET, and the checks that a stopped daemon left nothing behind."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from daemon_process import daemon_env
from modelreg.shared.launcher import wait_for_daemon
from waiting import wait_until


@dataclass
class Foreground:
    """`modelreg daemon --foreground` as a supervisor runs it: its own process, output to a file."""

    home: Path
    proc: subprocess.Popen
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_foreground(home: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True,
                     command: list[str] | None = None) -> Foreground:
    """Start the real command (or ``command``, e.g. a unit's ExecStart) and, with ``wait``, wait
    until it answers health."""
    home.mkdir(parents=True, exist_ok=True)
    log = home.parent / f"{home.name}-foreground.log"
    command = command or [sys.executable, "-m", "modelreg.tui.cli", "daemon", "--foreground",
                          "--listen", "127.0.0.1:0", *args]
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env={**daemon_env(home), **(env or {})})
    if wait:
        wait_for_daemon(home, proc, 30, log=log, kill=True)
    return Foreground(home, proc, log)


def modelreg_processes(home: Path) -> list[str]:
    """The command lines of live processes that run modelreg on ``home`` (a /proc scan, as `ps` does)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        line = " ".join(words)
        if not zombie and "modelreg" in line and str(home) in line:
            found.append(f"{entry}: {line}")
    return found


def lock_free(home: Path) -> bool:
    """Whether the home's daemon lock can be taken (what the next daemon's start needs)."""
    fd = os.open(home / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotifySocket:
    """A service manager's end of sd_notify: an AF_UNIX datagram socket the daemon is pointed at."""

    def __init__(self, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"modelreg-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:  # a short folder: a socket path must fit in 108 bytes, pytest's tmp_path may not
            self.folder = tempfile.mkdtemp(prefix="mr-notify-", dir="/tmp")
            self.address = os.path.join(self.folder, "notify")
            self.sock.bind(self.address)

    def receive(self, timeout: float) -> dict[str, str]:
        """The next message, as its KEY=VALUE fields."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            os.unlink(self.address)
            os.rmdir(self.folder)


def assert_left_nothing(home: Path, port: int) -> None:
    """A stopped daemon frees its port and lock and leaves no modelreg process of its home."""
    wait_until(lambda: port_free(port), 10, f"port {port} to be free")
    wait_until(lambda: lock_free(home), 10, "the home's lock to be released")
    wait_until(lambda: not modelreg_processes(home), 10, "no modelreg process of the home")
    assert not (home / "daemon.json").exists(), "a clean stop removes daemon.json"
