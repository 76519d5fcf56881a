"""One daemon per home: an exclusive flock held for the daemon's lifetime."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from modelreg.shared.config import LOCK_FILE
from modelreg.shared.errors import Conflict


class HomeLock:
    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 100).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Conflict(f"another modelreg daemon (pid {holder}) is already running on {self.path.parent}; "
                           "stop it first or use another --home") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
