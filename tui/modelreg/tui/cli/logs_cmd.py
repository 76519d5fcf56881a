"""logs: the background daemon's log file, its last lines and, with -f, what it writes next.

Read straight from HOME/logs/daemon.log (no daemon needed: the log matters most when the
daemon would not start); the daemon rotates it to daemon.log.1 …, which -f follows.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path

import click

from modelreg.shared.errors import NotFound

from .context import Context, pass_ctx

LOG = Path("logs") / "daemon.log"
POLL_S = 0.2
_BLOCK = 64 * 1024


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines as the daemon writes them (Ctrl-C stops).")
@click.option("--lines", "-n", type=click.IntRange(0, None), default=50, show_default=True,
              help="How many of the last lines to show first.")
@pass_ctx
def logs(ctx: Context, follow: bool, lines: int) -> None:
    """The daemon's log (HOME/logs/daemon.log), newest last.

    A daemon run with --foreground logs to its stderr instead: under systemd, read it with
    `journalctl [--user] -u modelreg`.
    """
    path = ctx.home / LOG
    if not path.exists() and not follow:
        raise NotFound(f"no daemon log at {path}: a daemon started in the background writes it; one run with "
                       "--foreground logs to its stderr (under systemd: journalctl [--user] -u modelreg)")
    try:
        start = path.stat().st_size if path.exists() else 0  # -f goes on from here: no line lost or shown twice
        for line in last_lines(path, lines):
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        if follow:
            _follow(path, start)
    except KeyboardInterrupt:
        sys.exit(130)


def last_lines(path: Path, n: int) -> list[bytes]:
    """The last ``n`` lines of the log, reaching back into the rotated daemon.log.1, .2 … when
    the current file has fewer (it may have just rotated)."""
    found = _tail(path, n)
    for k in itertools.count(1):
        older = path.with_name(f"{path.name}.{k}")
        if len(found) >= n or not older.exists():
            return found
        found = _tail(older, n - len(found)) + found
    return found


def _tail(path: Path, n: int) -> list[bytes]:
    """The last ``n`` lines of a file, read backwards in blocks (a log can be large)."""
    if n <= 0:
        return []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        data, start = b"", end
        while start > 0 and data.count(b"\n") <= n:
            start = max(0, start - _BLOCK)
            f.seek(start)
            data = f.read(end - start)
    return data.splitlines(keepends=True)[-n:]


def _follow(path: Path, start: int) -> None:
    """Print what is appended. When the daemon rotates the log (a new file at ``path``), finish the
    old file, then the files rotated after it (a burst can rotate several times between two
    polls), then go on with the new one from its start."""
    f = _open_at(path, start)
    while True:
        if f is not None and _copy(f):
            continue
        current = _inode(path)
        if current is None or (f is not None and current == os.fstat(f.fileno()).st_ino):
            time.sleep(POLL_S)
            continue
        if f is not None:
            _copy(f)  # what was written to it just before it was renamed away
            for newer in _rotated_after(path, os.fstat(f.fileno()).st_ino):
                with open(newer, "rb") as g:
                    _copy(g)
            f.close()
        f = open(path, "rb")


def _copy(f) -> bool:
    """Print what ``f`` has past its position; whether there was anything."""
    chunk = f.read()
    if chunk:
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    return bool(chunk)


def _rotated_after(path: Path, inode: int) -> list[Path]:
    """The rotated files (daemon.log.N … .1) written after the one with ``inode``, oldest first."""
    for n in itertools.count(1):
        older = path.with_name(f"{path.name}.{n}")
        found = _inode(older)
        if found is None:
            return []
        if found == inode:
            return [path.with_name(f"{path.name}.{k}") for k in range(n - 1, 0, -1)]
    return []


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _open_at(path: Path, offset: int):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    f.seek(min(offset, os.fstat(f.fileno()).st_size))
    return f


COMMANDS = [logs]
