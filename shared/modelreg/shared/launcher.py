"""Starting a local daemon as a background process (the CLI and TUI never import it)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp

from .config import DAEMON_FILE, DEFAULT_HOST, DEFAULT_PORT, Endpoint, resolve_endpoint
from .errors import Unavailable


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as s:
            async with s.get(url + "/v1/health") as resp:
                return resp.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


async def answers(url: str) -> bool:
    return await _answers(url)


async def ensure_daemon(home: Path, listen: str | None = None, timeout: float = 15.0) -> Endpoint:
    """Return the endpoint of the home's daemon, starting it in the background if none answers."""
    endpoint = resolve_endpoint(home=home)
    if endpoint.explicit_url:
        if await _answers(endpoint.url):
            return endpoint
        raise Unavailable(f"no modelreg daemon answers at {endpoint.url} (MODELREG_URL)")
    # Only the URL this home's daemon wrote counts: a daemon on the default port may serve another home.
    if (home / DAEMON_FILE).exists() and await _answers(endpoint.url):
        return endpoint
    start_background(home, listen)
    deadline = time.monotonic() + timeout
    log = home / "logs" / "daemon.log"
    while time.monotonic() < deadline:
        import asyncio

        await asyncio.sleep(0.1)
        endpoint = resolve_endpoint(home=home)
        if (home / DAEMON_FILE).exists() and await _answers(endpoint.url):
            return endpoint
    tail = ""
    try:
        tail = "\n".join(log.read_text().splitlines()[-5:])
    except OSError:
        pass
    raise Unavailable(f"started a daemon for {home} but it did not answer within {timeout:.0f}s"
                      + (f"; its log ({log}) ends with:\n{tail}" if tail else ""))


def start_background(home: Path, listen: str | None = None) -> subprocess.Popen[bytes]:
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
