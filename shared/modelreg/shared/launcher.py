"""Starting a local daemon as a background process (the CLI and TUI never import it)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import DAEMON_FILE, DEFAULT_HOST, DEFAULT_PORT, Endpoint, resolve_endpoint
from .errors import Unavailable

if TYPE_CHECKING:
    import subprocess

NO_AUTOSTART_ENV = "MODELREG_NO_AUTOSTART"


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a modelreg daemon answers GET /v1/health at ``url`` (blocking, standard library only)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or DEFAULT_HOST, parts.port or (443 if parts.scheme == "https" else 80), timeout=timeout)
    try:
        conn.request("GET", parts.path.rstrip("/") + "/v1/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def autostart_disabled() -> bool:
    return os.environ.get(NO_AUTOSTART_ENV, "").strip().lower() not in ("", "0", "false", "no")


def ensure_daemon_sync(home: Path, listen: str | None = None, timeout: float = 15.0, *,
                       autostart: bool | None = None, announce: Callable[[str], None] | None = None) -> Endpoint:
    """The endpoint of the home's daemon, starting one in the background if none answers (blocking).

    ``autostart=False`` (or ``MODELREG_NO_AUTOSTART=1``) raises Unavailable instead of starting
    one; ``announce`` is told, once, that a daemon was started and how to stop it.
    """
    endpoint = resolve_endpoint(home=home)
    if endpoint.explicit_url:
        if answers(endpoint.url):
            return endpoint
        raise Unavailable(f"no modelreg daemon answers at {endpoint.url} (MODELREG_URL)", {"url": endpoint.url})
    # Only the URL this home's daemon wrote counts: a daemon on the default port may serve another home.
    if (home / DAEMON_FILE).exists() and answers(endpoint.url):
        return endpoint
    if autostart is False or (autostart is None and autostart_disabled()):
        raise Unavailable(f"no modelreg daemon is running for {home}, and starting one is turned off "
                          f"({NO_AUTOSTART_ENV} or --no-autostart); start it with `modelreg daemon --home {home}`",
                          {"home": str(home)})
    proc = start_background(home, listen)
    deadline = time.monotonic() + timeout
    log = home / "logs" / "daemon.log"
    while time.monotonic() < deadline:
        time.sleep(0.05)
        endpoint = resolve_endpoint(home=home)
        if (home / DAEMON_FILE).exists() and answers(endpoint.url):
            if announce is not None:
                announce(f"started a modelreg daemon in the background for {home} (pid {proc.pid}, {endpoint.url}); "
                         f"stop it with `{stop_command(home)}`")
            return endpoint
        if proc.poll() is not None:
            break
    tail = ""
    try:
        tail = "\n".join(log.read_text().splitlines()[-5:])
    except OSError:
        pass
    what = "exited" if proc.poll() is not None else f"did not answer within {timeout:.0f}s"
    raise Unavailable(f"started a daemon for {home} but it {what}"
                      + (f"; its log ({log}) ends with:\n{tail}" if tail else ""), {"home": str(home)})


def stop_command(home: Path) -> str:
    """The command that stops this home's daemon, as a user would type it."""
    from .config import default_home

    return "modelreg daemon --stop" + ("" if Path(home) == default_home() else f" --home {home}")


async def ensure_daemon(home: Path, listen: str | None = None, timeout: float = 15.0, **options: object) -> Endpoint:
    """``ensure_daemon_sync`` off the event loop (for the TUI)."""
    import asyncio

    return await asyncio.to_thread(ensure_daemon_sync, home, listen, timeout, **options)  # type: ignore[arg-type]


def start_background(home: Path, listen: str | None = None) -> subprocess.Popen[bytes]:
    # Imported here: every CLI command loads this module, few start a daemon.
    import subprocess
    import threading

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / "logs").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "modelreg.daemon", "--home", str(home)]
    if not listen and not _port_free(DEFAULT_HOST, DEFAULT_PORT):
        listen = f"{DEFAULT_HOST}:0"  # the default port serves another home: take any free one
    if listen:
        cmd += ["--listen", listen]
    log = open(home / "logs" / "daemon.log", "ab")
    env = {k: v for k, v in os.environ.items() if k != "MODELREG_URL"}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True, env=env)
    # A long-lived parent (the TUI, `modelreg demo`) reaps the daemon when it exits, so it
    # does not linger as a zombie that still looks alive to `modelreg daemon --stop`.
    threading.Thread(target=proc.wait, name="modelreg-daemon-reaper", daemon=True).start()
    return proc


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
