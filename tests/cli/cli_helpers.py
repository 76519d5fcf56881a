"""Helpers for the CLI tests: a `modelreg` process whose output is read line by line with a
deadline, and one whose stdout is a terminal (a pty)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from daemon_process import daemon_env

CLI = [sys.executable, "-m", "modelreg.tui.cli"]


class Running:
    """A `modelreg` command left running; its stdout and stderr lines are collected as they come."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL, env={**daemon_env(home), **(env or {})})
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._pumps = [threading.Thread(target=self._pump, args=(name, stream), daemon=True)
                       for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))]
        for pump in self._pumps:
            pump.start()

    def _pump(self, name: str, stream) -> None:
        for line in stream:
            self._lines.put((name, line))

    def _drain(self, timeout: float) -> None:
        try:
            name, line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return
        (self.stdout if name == "out" else self.stderr).append(line)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.proc.poll() is not None and self._lines.empty()):
                raise AssertionError(f"timed out waiting for {what or condition}: stdout={self.stdout} "
                                     f"stderr={self.stderr} rc={self.proc.poll()}")
            self._drain(min(remaining, 0.2))

    def finish(self, timeout: float = 20) -> int:
        rc = self.proc.wait(timeout)
        for pump in self._pumps:  # the pipes close with the process: read what is left
            pump.join(10)
        while not self._lines.empty():
            self._drain(0)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_on_terminal(home: Path, *args: str, columns: int = 100, timeout: float = 60) -> tuple[int, str]:
    """Run `modelreg` with a pty as stdout (what a person sees); returns (exit code, output)."""
    import pty

    master, slave = pty.openpty()
    env = {**daemon_env(home), "COLUMNS": str(columns), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([*CLI, *args], stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    return rc, b"".join(chunks).decode("utf-8", errors="replace")
